use std::process::ExitCode;

// The decoder allocates one small value after another and frees them together: mimalloc's
// thread-local free lists serve that pattern far better than glibc's malloc (see the bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    priorauth::cli::run()
}
