#[tokio::main]
async fn main() -> std::process::ExitCode {
    imshift::cli::run().await
}
