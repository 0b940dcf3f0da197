//! A sandbox's HTTP server running in this process: started on a listener, stopped when asked
//! or when its handle is dropped (so a test or a rehearsal that ends frees the port).

use axum::Router;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Serving {
    /// Serves `app` on `listener` until stopped; `what` names it in the log if it fails.
    pub fn start(listener: tokio::net::TcpListener, app: Router, what: &'static str) -> Self {
        let addr: Option<SocketAddr> = listener.local_addr().ok();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = server.await {
                tracing::error!("{what} on {addr:?} stopped: {e}");
            }
        });
        Serving {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stop accepting, finish calls in flight, and wait for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
