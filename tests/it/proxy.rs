//! A recording HTTP proxy on loopback, in front of a real server (moto's S3): it forwards every
//! request unchanged and remembers its method and path, so a test can prove which S3 operations
//! keytrail called.

use hyper::body::Incoming;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, Mutex};

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
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                l.lock()
                    .unwrap()
                    .push((req.method().to_string(), path.clone()));
                *req.uri_mut() = format!("{upstream}{}", path.trim_start_matches('/'))
                    .parse()
                    .unwrap();
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
