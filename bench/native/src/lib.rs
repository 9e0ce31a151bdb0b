//! Shared pieces of the benchmark's native side (`mock-server` and `rust-client`): the workload
//! definitions both sides agree on, a tiny `--key value` argument parser and process resource
//! readings. The server is the project's mock Blender (`mock-server/`); the client reads replies
//! with the pool's own scanner (`blender_mcp_pool_core::framing`).
//!
//! Nothing here is used by the pool itself; this crate only exists for `npm run bench`.

pub mod args;
pub mod shapes;
pub mod usage;

/// One line of the generated `execute_code` script; repeated (and cut) to the requested size.
/// `bench/run.mjs` generates the same script (`makeCode`), so both sides send the same bytes.
pub const CODE_LINE: &str = "bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 0, 0))\n";

/// An `execute_code` script of exactly `len` bytes (ASCII), made of [`CODE_LINE`]s.
pub fn make_code(len: usize) -> String {
    let reps = len / CODE_LINE.len() + 1;
    let mut code = CODE_LINE.repeat(reps);
    code.truncate(len);
    code
}
