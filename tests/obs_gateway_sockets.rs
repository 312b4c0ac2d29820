//! obs-gateway in-process: every socket it accepts gets `TCP_NODELAY` and TCP keep-alive (through
//! `kms_server::listener`, the workspace's one accept path), read back from the kernel.

use std::time::{Duration, Instant};

use kmsbox_test_support::sockets::{TcpOptions, own_tcp_socket};
use obs_gateway::server::{Config, run};

#[tokio::test]
#[allow(
    clippy::disallowed_methods,
    reason = "the gateway under test runs beside the test body and is stopped and awaited below"
)]
async fn accepted_sockets_have_nodelay_and_keepalive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.path().join("gw"),
        // Accepting needs no daemon: the channel to it connects lazily.
        kms_endpoint: "http://127.0.0.1:9".into(),
        region: "region".into(),
        credentials: None,
        allow_customer_keys: false,
        host_suffix: "obs.localhost".into(),
        kms_clock: false,
        kms_admin_token: None,
    };
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(
        config,
        move |addr, _, _| {
            let _ = addr_tx.send(addr);
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let server_addr = addr_rx.await.expect("the gateway listens");
    let client = tokio::net::TcpStream::connect(server_addr)
        .await
        .expect("connect");
    let peer = client.local_addr().expect("local address");
    let deadline = Instant::now() + Duration::from_secs(5);
    let accepted = loop {
        if let Some(options) = own_tcp_socket(server_addr, peer) {
            break options;
        }
        assert!(
            Instant::now() < deadline,
            "the accepted socket never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        accepted,
        TcpOptions {
            nodelay: true,
            keepalive: true
        }
    );
    drop(client);
    let _ = stop_tx.send(());
    server
        .await
        .expect("the gateway task")
        .expect("the gateway stops cleanly");
}
