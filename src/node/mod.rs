//! Node runtime glue: what the binding needs of the running Node beyond N-API. Symbols looked up
//! in the running process (`symbols.rs`), the libuv functions found with them (`uv.rs`), the
//! watcher that reads replies on the JavaScript thread's event loop (`watcher.rs`).

pub(crate) mod symbols;
pub(crate) mod uv;
pub(crate) mod watcher;
