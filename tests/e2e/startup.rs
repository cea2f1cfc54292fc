//! Start-up and connections: bad backend store URIs are one clear error, not a hang or a panic;
//! idle keep-alive connections stay open longer than clients keep them.

use ferroflow_server::{Application, ServerConfig};

async fn build_error(uri: &str) -> String {
    let config = ServerConfig::for_store(uri, std::env::temp_dir().join("ferroflow-unused"));
    match Application::build(&config).await {
        Ok(_) => panic!("{uri} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn unsupported_store_scheme_is_named() {
    let err = build_error("mysql://root@localhost/db").await;
    assert!(
        err.contains("unsupported backend store URI scheme 'mysql'"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_postgres_reports_the_cause() {
    // The cause ("refused"), not a pool timeout, and no password in the message.
    let err = build_error("postgresql://user:secret@127.0.0.1:1/db").await;
    assert!(
        err.contains("cannot connect to backend store") && err.contains("refused"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "password leaked into the error: {err}"
    );
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_refused() {
    let err = build_error("sqlite:////no/such/dir/x.db").await;
    assert!(
        err.contains("directory /no/such/dir does not exist"),
        "{err}"
    );
}

/// Sends one `GET /health` on `stream` and reads the whole response.
async fn get_health(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send request");
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    // `/health` answers "OK": the response ends with its body.
    while !response.ends_with(b"OK") {
        let n = stream.read(&mut buf).await.expect("read response");
        assert!(
            n > 0,
            "server closed the connection: {:?}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn idle_keep_alive_connection_outlives_client_pool_expiry() {
    // httpx drops idle pooled connections after 5 s; the server must not close them first,
    // or a request sent as it closes fails without a response.
    let app = ferroflow_e2e::spawn_app(ferroflow_e2e::Store::Sqlite)
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    assert!(get_health(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(get_health(&mut stream).await.starts_with("HTTP/1.1 200"));
}
