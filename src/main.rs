use std::process::ExitCode;

// The decoder allocates one small value after another and frees them together: mimalloc's
// thread-local free lists serve that pattern far better than glibc's malloc (see the bench),
// and `priorauth::alloc` asks it for plain blocks where the `mimalloc` crate would ask for
// aligned ones (slow above 1 KiB).
#[global_allocator]
static ALLOCATOR: priorauth::alloc::MiMalloc = priorauth::alloc::MiMalloc;

fn main() -> ExitCode {
    priorauth::cli::run()
}
