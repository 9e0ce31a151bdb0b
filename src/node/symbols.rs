//! Functions the running Node exports beyond what napi-rs links: libuv's API (`uv.h` is part of
//! Node's public headers) and newer Node-API functions. Each is looked up at run time, once, by
//! its caller; a Node that lacks one gets the slower path that does without it.

use std::ffi::{c_void, CStr};

/// The function named `name` in the running process, as an `F` (a C function pointer type).
///
/// # Safety
/// `F` must be the C signature of the function of that name.
pub(crate) unsafe fn load<F: Copy>(name: &CStr) -> Option<F> {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*mut c_void>()) };
    let found = lookup(name)?;
    // Safety: same size (checked above); the caller vouches for the signature.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&found) })
}

/// Unix: every loaded image, Node's executable (or libnode) among them.
#[cfg(unix)]
fn lookup(name: &CStr) -> Option<*mut c_void> {
    // Safety: dlsym with RTLD_DEFAULT and a NUL-terminated name has no other precondition.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!found.is_null()).then_some(found)
}

/// Windows: node.exe's exports, where napi-rs finds every Node-API function too.
#[cfg(windows)]
fn lookup(name: &CStr) -> Option<*mut c_void> {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    // Safety: GetModuleHandleW(null) returns the executable's module handle, which stays loaded
    // for the life of the process; GetProcAddress with it and a NUL-terminated name only looks
    // the export up.
    unsafe {
        let exe = GetModuleHandleW(std::ptr::null());
        if exe.is_null() {
            return None;
        }
        GetProcAddress(exe, name.as_ptr().cast()).map(|f| f as *mut c_void)
    }
}
