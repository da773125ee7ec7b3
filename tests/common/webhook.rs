//! A local webhook receiver for the reconciler's notifications.

use axum::routing::post;
use std::sync::{Arc, Mutex};

/// Serves `POST /hook` on a free loopback port; returns its URL and what was received, each
/// body turned into a `T` by `parse` (the raw text, or its JSON).
pub async fn receiver<T: Send + 'static>(parse: fn(String) -> T) -> (String, Arc<Mutex<Vec<T>>>) {
    let received: Arc<Mutex<Vec<T>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(parse(body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

/// A received body as JSON (`null` when it is not JSON).
pub fn json(body: String) -> serde_json::Value {
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}
