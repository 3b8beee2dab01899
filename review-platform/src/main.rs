//! Runs the review platform as its own process.

/// As in `gd-customs`: mimalloc for the many small, short-lived allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    customs_common::server::run_standalone(
        review_platform::MODULE,
        customs_proto::FILE_DESCRIPTOR_SET,
    )
    .await
}
