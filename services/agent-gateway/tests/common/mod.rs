//! Test harness: a real nats-server, a real read model, the gateway on a real port, and a
//! fake-but-real agent speaking the protocol's frames over a real WebSocket.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_agent_gateway::{AgentGateway, AgentGatewayOptions};
use berth_agent_protocol::{
    AgentFrame, DriverKind, GatewayFrame, PayloadMessage, RegisterInstance, Registered, Resources,
};
use berth_eventlog::{Append, EventLog, RecordedEvent};
use berth_events::{
    Aggregate, Event, EventMeta, JsonText, PortAssignment, PortRequest, TaskPlaced, TaskRequested,
};
use berth_testkit::TestNats;
use futures::SinkExt;
use futures::stream::{SplitSink, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "s3cret-token";
pub const ACCOUNT: &str = "123456789012";
/// Long enough that a test busy elsewhere never trips it; the heartbeat test sets its own.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const WAIT: Duration = Duration::from_secs(10);

/// The log and read model a gateway (or several, one after the other) runs on.
pub struct Harness {
    pub nats: TestNats,
    pub log: EventLog,
    pub read_model_url: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let read_model_url = format!("sqlite://{}", dir.path().join("agent-gateway.db").display());
        Self::with_read_model(read_model_url, dir).await
    }

    pub async fn postgres() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let read_model_url = berth_testkit::postgres_database().await;
        Self::with_read_model(read_model_url, dir).await
    }

    async fn with_read_model(read_model_url: String, dir: tempfile::TempDir) -> Self {
        let nats = TestNats::start();
        let log = nats.event_log().await;
        Self {
            nats,
            log,
            read_model_url,
            _dir: dir,
        }
    }

    pub fn options(&self) -> AgentGatewayOptions {
        let mut options = AgentGatewayOptions::new(TOKEN, self.read_model_url.clone());
        options.account_id = ACCOUNT.to_owned();
        options.gateway_id = "gw-test".to_owned();
        options.heartbeat_timeout = HEARTBEAT;
        options
    }

    pub async fn start(&self) -> RunningGateway {
        self.start_with(self.options()).await
    }

    pub async fn start_with(&self, options: AgentGatewayOptions) -> RunningGateway {
        let gateway = AgentGateway::build(self.log.clone(), options)
            .await
            .expect("build gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.run(listener, async move {
            let _ = stopped.await;
        }));
        RunningGateway {
            address,
            stop: Some(stop),
            task,
        }
    }

    /// Appends one event (no concurrency check), returning its sequence.
    pub async fn append(&self, aggregate: Aggregate, event: impl Into<Event>) -> u64 {
        self.log
            .append(Append::new(aggregate, event, EventMeta::new()))
            .await
            .expect("append")
            .sequence
    }

    /// Appends `TaskRequested` then `TaskPlaced` on `instance_id`, as api-gateway and scheduler
    /// would; returns the task id.
    pub async fn place_task(&self, cluster: &str, instance_id: &str) -> String {
        let task_id = uuid::Uuid::new_v4().simple().to_string();
        let aggregate = task_aggregate(cluster, &task_id);
        self.append(aggregate.clone(), task_requested()).await;
        self.append(
            aggregate,
            TaskPlaced {
                container_instance_id: instance_id.to_owned(),
                cpu_units: 256,
                memory_mib: 64,
                ports: vec![PortAssignment {
                    container_name: "app".into(),
                    container_port: 80,
                    host_port: 32768,
                    protocol: "tcp".into(),
                    bind_ip: None,
                }],
            },
        )
        .await;
        task_id
    }

    /// Every event in the log now.
    pub async fn events(&self) -> Vec<RecordedEvent> {
        let last = self.log.last_sequence().await.expect("last sequence");
        if last == 0 {
            return Vec::new();
        }
        let mut stream = self.log.subscribe(1).await.expect("subscribe");
        let mut events = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout(WAIT, stream.next()).await {
            let event = event.expect("event");
            let sequence = event.sequence;
            events.push(event);
            if sequence >= last {
                break;
            }
        }
        events
    }

    /// Polls the log until `found` picks something out of it.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        found: impl Fn(&[RecordedEvent]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let events = self.events().await;
            if let Some(value) = found(&events) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; log: {:#?}", types(&events));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn types(events: &[RecordedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{} {} {}", e.sequence, e.event_type, e.aggregate))
        .collect()
}

pub fn task_aggregate(cluster: &str, id: &str) -> Aggregate {
    Aggregate::Task {
        cluster: cluster.to_owned(),
        id: id.to_owned(),
    }
}

pub fn instance_aggregate(cluster: &str, id: &str) -> Aggregate {
    Aggregate::ContainerInstance {
        cluster: cluster.to_owned(),
        id: id.to_owned(),
    }
}

pub fn task_arn(cluster: &str, id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task/{cluster}/{id}")
}

/// A RunTask of `web:1` with a container override, as api-gateway would append it.
pub fn task_requested() -> TaskRequested {
    TaskRequested {
        family: "web".into(),
        revision: 1,
        definition: JsonText::from_value(&json!({
            "family": "web",
            "networkMode": "bridge",
            "containerDefinitions": [{
                "name": "app",
                "image": "busybox:1.36",
                "memory": 64,
                "essential": true,
                "command": ["sleep", "60"],
                "environment": [{"name": "A", "value": "1"}],
                "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]
            }]
        })),
        overrides: Some(json!({"containerOverrides": [{
            "name": "app",
            "command": ["sleep", "5"],
            "environment": [{"name": "B", "value": "2"}]
        }]})),
        cpu_units: 0,
        memory_mib: 64,
        ports: vec![PortRequest {
            container_name: "app".into(),
            container_port: 80,
            host_port: 0,
            protocol: "tcp".into(),
        }],
        constraints: Vec::new(),
        strategy: Vec::new(),
        target_instances: Vec::new(),
        group: "family:web".into(),
        started_by: None,
        launch_type: "EC2".into(),
        tags: Vec::new(),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// A gateway running on its own port.
pub struct RunningGateway {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.address)
    }

    /// Graceful shutdown: sessions close, the projection commits and stops.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("gateway stops in time")
            .expect("gateway task")
            .expect("gateway ran");
    }
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

/// A fake agent: a real WebSocket client speaking the protocol. A reader task answers
/// heartbeats (unless told not to) and queues every other frame; `None` marks the close.
pub struct FakeAgent {
    sink: Arc<Mutex<Sink>>,
    frames: mpsc::UnboundedReceiver<Option<GatewayFrame>>,
    heartbeats: Arc<std::sync::atomic::AtomicUsize>,
    answer_heartbeats: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl FakeAgent {
    pub async fn connect(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let (sink, mut stream) = socket.split();
        let sink = Arc::new(Mutex::new(sink));
        let (tx, frames) = mpsc::unbounded_channel();
        let answer_heartbeats = Arc::new(AtomicBool::new(true));
        let heartbeats = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let reader = tokio::spawn({
            let sink = sink.clone();
            let answer = answer_heartbeats.clone();
            let heartbeats = heartbeats.clone();
            async move {
                while let Some(Ok(message)) = stream.next().await {
                    let text = match message {
                        Message::Text(text) => text,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let frame = GatewayFrame::from_json(text.as_str()).expect("gateway frame");
                    if let GatewayFrame::HeartbeatMessage(heartbeat) = &frame {
                        heartbeats.fetch_add(1, Ordering::SeqCst);
                        if answer.load(Ordering::SeqCst) {
                            let ack =
                                AgentFrame::HeartbeatAck(berth_agent_protocol::HeartbeatAck {
                                    message_id: heartbeat.message_id.clone(),
                                });
                            let _ = sink
                                .lock()
                                .await
                                .send(Message::text(ack.to_json().expect("encode")))
                                .await;
                        }
                        continue;
                    }
                    if tx.send(Some(frame)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(None);
            }
        });
        Self {
            sink,
            frames,
            heartbeats,
            answer_heartbeats,
            reader,
        }
    }

    pub fn answer_heartbeats(&self, answer: bool) {
        self.answer_heartbeats.store(answer, Ordering::SeqCst);
    }

    pub fn heartbeats_seen(&self) -> usize {
        self.heartbeats.load(Ordering::SeqCst)
    }

    pub async fn send(&self, frame: AgentFrame) {
        self.send_text(&frame.to_json().expect("encode")).await;
    }

    pub async fn send_text(&self, text: &str) {
        self.sink
            .lock()
            .await
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next frame other than a heartbeat; `None` once the gateway closed the connection.
    pub async fn recv(&mut self) -> Option<GatewayFrame> {
        tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .expect("a frame from the gateway in time")
            .flatten()
    }

    /// Asserts the gateway sends nothing (but heartbeats) for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(frame)) = tokio::time::timeout(quiet, self.frames.recv()).await {
            panic!("expected no frame, got {frame:?}");
        }
    }

    pub async fn recv_payload(&mut self) -> PayloadMessage {
        match self.recv().await {
            Some(GatewayFrame::PayloadMessage(payload)) => payload,
            other => panic!("expected a PayloadMessage, got {other:?}"),
        }
    }

    /// Registers and expects to be accepted.
    pub async fn register(&mut self, cluster: &str, instance_id: Option<&str>) -> Registered {
        self.send(register_frame(cluster, TOKEN, instance_id)).await;
        match self.recv().await {
            Some(GatewayFrame::Registered(registered)) => registered,
            other => panic!("expected Registered, got {other:?}"),
        }
    }

    /// Closes the connection as an agent going away would.
    pub async fn close(self) {
        let _ = self.sink.lock().await.close().await;
        self.reader.abort();
    }
}

pub fn register_frame(cluster: &str, token: &str, instance_id: Option<&str>) -> AgentFrame {
    let mut attributes = BTreeMap::new();
    attributes.insert("ecs.os-type".to_owned(), "linux".to_owned());
    attributes.insert("berth.ec2-instance-id".to_owned(), "host-a".to_owned());
    AgentFrame::RegisterInstance(RegisterInstance {
        cluster: cluster.to_owned(),
        token: token.to_owned(),
        instance_id: instance_id.map(str::to_owned),
        resources: Resources {
            cpu_units: 2048,
            memory_mib: 3900,
            reserved_tcp_ports: vec![22],
            reserved_udp_ports: Vec::new(),
        },
        attributes,
        agent_version: "0.1.0".to_owned(),
        driver: DriverKind::Process,
    })
}
