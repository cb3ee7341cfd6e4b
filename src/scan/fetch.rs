//! fetch: the bytes of one listed object. Local files here; the S3 body reader lives with the S3
//! store and hands the same bytes to `decode`.

use super::list::ObjectRef;
use super::store::LocalStore;

pub fn read_local(store: &LocalStore, obj: &ObjectRef) -> Result<Vec<u8>, String> {
    std::fs::read(store.path_of(&obj.key)).map_err(|e| format!("cannot read: {e}"))
}
