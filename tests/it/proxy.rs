//! HTTP proxies on loopback, in front of a real server (moto's S3). `Recorder` forwards every
//! request unchanged and remembers its method and path, so a test can prove which S3 operations
//! keytrail called; `Faulty` fails a share of requests the ways S3 and networks do; `Stalling`
//! holds one GetObject answer back to show whether the others go on meanwhile.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The path and query of a request (`/bucket/key?x-id=GetObject`).
fn path_of(req: &Request<Incoming>) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// Points a request at `upstream`, same path and query.
fn redirect(req: &mut Request<Incoming>, upstream: &Uri, path: &str) {
    *req.uri_mut() = format!("{upstream}{}", path.trim_start_matches('/'))
        .parse()
        .unwrap();
}

pub struct Recorder {
    pub endpoint: String,
    log: Arc<Mutex<Vec<(String, String)>>>,
    _rt: tokio::runtime::Runtime,
}

impl Recorder {
    pub fn start(upstream: &str) -> Recorder {
        let log: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let upstream: Uri = upstream.parse().unwrap();
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        let l = log.clone();
        let (endpoint, rt) = crate::common::serve(move || {
            let (l, client, upstream) = (l.clone(), client.clone(), upstream.clone());
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let path = path_of(&req);
                l.lock()
                    .unwrap()
                    .push((req.method().to_string(), path.clone()));
                redirect(&mut req, &upstream, &path);
                let client = client.clone();
                async move { client.request(req).await }
            })
        });
        Recorder {
            endpoint,
            log,
            _rt: rt,
        }
    }

    /// `(method, path and query)` of every request, in arrival order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BoxError>;

/// The ways a faulty S3 fails a request.
pub const FAULTS: [&str; 4] = [
    "503 SlowDown",
    "500 InternalError",
    "connection reset",
    "body cut short",
];

/// A fault-injecting proxy in front of a real S3 server: a given share of requests fails in one
/// of the four ways of [`FAULTS`], chosen by a fixed pseudo-random sequence (a body is cut only on
/// GetObject, the one operation whose body keytrail streams). Counts what it injected.
pub struct Faulty {
    pub endpoint: String,
    injected: Arc<[AtomicUsize; 4]>,
    _rt: tokio::runtime::Runtime,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn s3_error(status: u16, code: &str) -> hyper::Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>FAULT</RequestId></Error>"
    );
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(
            http_body_util::Full::new(bytes::Bytes::from(xml))
                .map_err(|e| match e {})
                .boxed(),
        )
        .unwrap()
}

impl Faulty {
    pub fn start(upstream: &str, percent: u64) -> Faulty {
        let injected: Arc<[AtomicUsize; 4]> = Arc::default();
        let seq = Arc::new(AtomicU64::new(0));
        let upstream: Uri = upstream.parse().unwrap();
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        let inj = injected.clone();
        let (endpoint, rt) = crate::common::serve(move || {
            let (inj, seq, client, upstream) =
                (inj.clone(), seq.clone(), client.clone(), upstream.clone());
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let h = splitmix(seq.fetch_add(1, Ordering::Relaxed));
                let path = path_of(&req);
                // Path-style: /bucket/key?x-id=GetObject (the SDK names the operation).
                let get_object = req.method() == hyper::Method::GET
                    && path.contains("x-id=GetObject")
                    && path.trim_start_matches('/').contains('/');
                let fault = (h % 100 < percent).then_some((h >> 32) as usize % 4);
                let fault = match fault {
                    Some(3) if !get_object => Some(2),
                    f => f,
                };
                if let Some(f) = fault {
                    inj[f].fetch_add(1, Ordering::Relaxed);
                }
                redirect(&mut req, &upstream, &path);
                let client = client.clone();
                async move {
                    match fault {
                        Some(0) => return Ok(s3_error(503, "SlowDown")),
                        Some(1) => return Ok(s3_error(500, "InternalError")),
                        Some(2) => return Err::<_, BoxError>("injected connection reset".into()),
                        _ => {}
                    }
                    let resp = client.request(req).await?;
                    if fault != Some(3) {
                        return Ok(resp.map(|b| b.map_err(BoxError::from).boxed()));
                    }
                    // Headers (with the full Content-Length) and half the body, then a broken
                    // connection.
                    let (parts, body) = resp.into_parts();
                    let bytes = body.collect().await?.to_bytes();
                    let half = bytes.slice(..bytes.len() / 2);
                    let frames: Vec<Result<hyper::body::Frame<bytes::Bytes>, BoxError>> = vec![
                        Ok(hyper::body::Frame::data(half)),
                        Err("injected: body cut short".into()),
                    ];
                    let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
                    Ok(hyper::Response::from_parts(parts, body.boxed()))
                }
            })
        });
        Faulty {
            endpoint,
            injected,
            _rt: rt,
        }
    }

    /// How many requests failed in each way of [`FAULTS`].
    pub fn injected(&self) -> [usize; 4] {
        std::array::from_fn(|i| self.injected[i].load(Ordering::Relaxed))
    }
}

/// A proxy that holds back the answer to the first GetObject until `n` later GetObjects have
/// been answered, or until `patience` has passed — so that a test can tell a scan that goes on
/// fetching around one slow object from a scan that waits for it. Says how it let go.
pub struct Stalling {
    pub endpoint: String,
    released: Arc<Mutex<Option<&'static str>>>,
    _rt: tokio::runtime::Runtime,
}

impl Stalling {
    pub fn start(upstream: &str, n: usize, patience: std::time::Duration) -> Stalling {
        let released: Arc<Mutex<Option<&'static str>>> = Arc::default();
        let first_taken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let upstream: Uri = upstream.parse().unwrap();
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        let rel = released.clone();
        let (endpoint, rt) = crate::common::serve(move || {
            let (rel, first_taken, answered, client, upstream) = (
                rel.clone(),
                first_taken.clone(),
                answered.clone(),
                client.clone(),
                upstream.clone(),
            );
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let path = path_of(&req);
                let get_object =
                    req.method() == hyper::Method::GET && path.contains("x-id=GetObject");
                let held = get_object && !first_taken.swap(true, Ordering::SeqCst);
                redirect(&mut req, &upstream, &path);
                let (rel, answered, client) = (rel.clone(), answered.clone(), client.clone());
                async move {
                    let resp = client.request(req).await?;
                    if held {
                        let others = async {
                            while answered.load(Ordering::SeqCst) < n {
                                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            }
                        };
                        let how = match tokio::time::timeout(patience, others).await {
                            Ok(()) => "count",
                            Err(_) => "timeout",
                        };
                        *rel.lock().unwrap() = Some(how);
                    } else if get_object {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok::<_, hyper_util::client::legacy::Error>(resp)
                }
            })
        });
        Stalling {
            endpoint,
            released,
            _rt: rt,
        }
    }

    /// How the held answer was let go: `count` (the others went on) or `timeout`.
    pub fn released(&self) -> Option<&'static str> {
        *self.released.lock().unwrap()
    }
}

/// A proxy that throttles like S3 does per prefix, only harder: a GetObject whose folder already
/// has `k` GetObjects in flight is answered `503 SlowDown`. Counts the SlowDowns and the most
/// GetObjects it saw in flight in one folder (its own limit aside).
pub struct Crowded {
    pub endpoint: String,
    slowdowns: Arc<AtomicUsize>,
    gets: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl Crowded {
    pub fn start(upstream: &str, k: usize) -> Crowded {
        let (slowdowns, gets): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let in_flight: Arc<Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
        let upstream: Uri = upstream.parse().unwrap();
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        let (sd, g) = (slowdowns.clone(), gets.clone());
        let (endpoint, rt) = crate::common::serve(move || {
            let (sd, g, in_flight, client, upstream) = (
                sd.clone(),
                g.clone(),
                in_flight.clone(),
                client.clone(),
                upstream.clone(),
            );
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let path = path_of(&req);
                let folder = (req.method() == hyper::Method::GET
                    && path.contains("x-id=GetObject"))
                .then(|| path[..path.rfind('/').unwrap_or(0)].to_string());
                let admitted = folder.as_ref().map(|f| {
                    g.fetch_add(1, Ordering::Relaxed);
                    let mut map = in_flight.lock().unwrap();
                    let n = map.entry(f.clone()).or_default();
                    if *n >= k {
                        false
                    } else {
                        *n += 1;
                        true
                    }
                });
                redirect(&mut req, &upstream, &path);
                let (client, sd, in_flight) = (client.clone(), sd.clone(), in_flight.clone());
                async move {
                    if admitted == Some(false) {
                        sd.fetch_add(1, Ordering::Relaxed);
                        return Ok::<_, BoxError>(s3_error(503, "SlowDown"));
                    }
                    let resp = client.request(req).await;
                    // The body is small: read it whole before the GET leaves the folder's count.
                    let out = match resp {
                        Ok(r) => {
                            let (parts, body) = r.into_parts();
                            let bytes = body.collect().await?.to_bytes();
                            Ok(hyper::Response::from_parts(
                                parts,
                                http_body_util::Full::new(bytes)
                                    .map_err(|e| match e {})
                                    .boxed(),
                            ))
                        }
                        Err(e) => Err(e.into()),
                    };
                    if let Some(f) = folder {
                        *in_flight.lock().unwrap().get_mut(&f).unwrap() -= 1;
                    }
                    out
                }
            })
        });
        Crowded {
            endpoint,
            slowdowns,
            gets,
            _rt: rt,
        }
    }

    /// SlowDowns answered, and GetObjects asked in all.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.slowdowns.load(Ordering::Relaxed),
            self.gets.load(Ordering::Relaxed),
        )
    }
}

/// A proxy that answers `403 AccessDenied` (S3's XML error) to every GetObject whose key
/// contains `needle`, forwards the rest, and remembers each GetObject's path and `user-agent` —
/// so a test can tell which of keytrail's GET paths asked, and what it asked.
pub struct Denying {
    pub endpoint: String,
    gets: Arc<Mutex<Vec<(String, String)>>>,
    _rt: tokio::runtime::Runtime,
}

impl Denying {
    pub fn start(upstream: &str, needle: &str) -> Denying {
        let gets: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let upstream: Uri = upstream.parse().unwrap();
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        let (g, needle) = (gets.clone(), needle.to_string());
        let (endpoint, rt) = crate::common::serve(move || {
            let (g, client, upstream, needle) =
                (g.clone(), client.clone(), upstream.clone(), needle.clone());
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let path = path_of(&req);
                let get_object =
                    req.method() == hyper::Method::GET && path.contains("x-id=GetObject");
                let denied = get_object && path.contains(&needle);
                if get_object {
                    let agent = req
                        .headers()
                        .get("user-agent")
                        .and_then(|a| a.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    g.lock().unwrap().push((path.clone(), agent));
                }
                redirect(&mut req, &upstream, &path);
                let client = client.clone();
                async move {
                    if denied {
                        return Ok(s3_error(403, "AccessDenied"));
                    }
                    let resp = client.request(req).await?;
                    Ok::<_, BoxError>(resp.map(|b| b.map_err(BoxError::from).boxed()))
                }
            })
        });
        Denying {
            endpoint,
            gets,
            _rt: rt,
        }
    }

    /// `(path and query, user-agent)` of every GetObject, in arrival order.
    pub fn gets(&self) -> Vec<(String, String)> {
        self.gets.lock().unwrap().clone()
    }
}
