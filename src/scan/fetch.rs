//! fetch: the bytes of one listed object. Local files for now; the S3 body reader will sit
//! beside it and hand the same bytes to `decode`.

use super::list::ObjectRef;

pub fn fetch(obj: &ObjectRef) -> Result<Vec<u8>, String> {
    std::fs::read(&obj.path).map_err(|e| format!("cannot read: {e}"))
}
