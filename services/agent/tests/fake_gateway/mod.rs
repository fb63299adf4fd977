//! The gateway's side of the agent protocol, for tests of the agent's session loop: a real
//! WebSocket server on `127.0.0.1:0` that hands every accepted connection to the test, which then
//! plays the gateway frame by frame.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_protocol::{AgentFrame, GatewayFrame, RegisterInstance, Registered};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// Bound for anything the tests wait on; the happy path takes a fraction of it.
pub const WAIT: Duration = Duration::from_secs(10);

/// A listening fake gateway.
pub struct FakeGateway {
    /// `ws://127.0.0.1:PORT`, as an operator would pass `--gateway`.
    pub url: String,
    sessions: mpsc::UnboundedReceiver<FakeSession>,
    accept: JoinHandle<()>,
}

impl FakeGateway {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, sessions) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let path = Arc::new(Mutex::new(String::new()));
                    let seen = Arc::clone(&path);
                    // The signature (and its large error type) is tungstenite's `Callback`.
                    #[allow(clippy::result_large_err)]
                    let callback = move |request: &Request, response: Response| {
                        *seen.lock().expect("lock") = request.uri().path().to_string();
                        Ok(response)
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                        let path = path.lock().expect("lock").clone();
                        let _ = tx.send(FakeSession { ws, path });
                    }
                });
            }
        });
        Self {
            url: format!("ws://{addr}"),
            sessions,
            accept,
        }
    }

    /// The next connection; panics after [`WAIT`].
    pub async fn next_session(&mut self) -> FakeSession {
        self.session_within(WAIT)
            .await
            .expect("the agent did not connect")
    }

    /// The next connection within `within`, if any.
    pub async fn session_within(&mut self, within: Duration) -> Option<FakeSession> {
        timeout(within, self.sessions.recv()).await.ok().flatten()
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What the agent did next.
#[derive(Debug)]
pub enum Next {
    Frame(AgentFrame),
    Closed,
    Silent,
}

/// One accepted agent connection.
pub struct FakeSession {
    ws: WebSocketStream<TcpStream>,
    /// The request path of the upgrade.
    pub path: String,
}

impl FakeSession {
    /// The next agent frame, a close, or silence for `within`.
    pub async fn next_within(&mut self, within: Duration) -> Next {
        let read = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return Next::Frame(
                            AgentFrame::from_json(text.as_str()).expect("agent sent a bad frame"),
                        );
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Next::Closed,
                    Some(Ok(_)) => {}
                }
            }
        };
        timeout(within, read).await.unwrap_or(Next::Silent)
    }

    /// The next agent frame; panics on close or after [`WAIT`].
    pub async fn recv(&mut self) -> AgentFrame {
        match self.next_within(WAIT).await {
            Next::Frame(frame) => frame,
            other => panic!("expected a frame from the agent, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: GatewayFrame) {
        let text = frame.to_json().expect("encode");
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Reads the `RegisterInstance`, answers `Registered` with `instance_id`, returns what the
    /// agent sent.
    pub async fn register(&mut self, instance_id: &str) -> RegisterInstance {
        let AgentFrame::RegisterInstance(register) = self.recv().await else {
            panic!("the first frame must be RegisterInstance");
        };
        self.send(GatewayFrame::Registered(Registered {
            instance_arn: format!(
                "arn:aws:ecs:us-east-1:000000000000:container-instance/{}/{instance_id}",
                register.cluster
            ),
            instance_id: instance_id.to_string(),
        }))
        .await;
        register
    }

    /// Reads until (and including) the `StateReport`, returning the reports resent before it.
    pub async fn reconciliation(
        &mut self,
    ) -> (
        Vec<berth_agent_protocol::TaskStateChange>,
        berth_agent_protocol::StateReport,
    ) {
        let mut resent = Vec::new();
        loop {
            match self.recv().await {
                AgentFrame::TaskStateChange(change) => resent.push(change),
                AgentFrame::StateReport(report) => return (resent, report),
                other => panic!("unexpected frame during reconciliation: {other:?}"),
            }
        }
    }
}
