//! Hosts built from network namespaces on one machine, for tests that run the project's
//! binaries as separate processes on their own addresses: every host is a namespace with
//! one interface (`eth0`) plugged into a bridge that lives in a "switch" namespace, so all
//! hosts share one subnet. The test process itself reaches every host through one more
//! port of the switch (its address is [`Lab::TEST_HOST`] on the lab's subnet). Links are shaped with `tc` (tbf: the kernels this project runs
//! on, CI included, lack `sch_netem`, so there is no kernel delay emulation).
//!
//! Needs root and iproute2 (the test command installs iproute2). Everything a lab creates
//! (namespaces, links, processes) is removed when it is dropped, even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A release binary of the workspace (built by the test command before the tests run), or
/// the one named by `<NAME>_BIN`.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    let env = format!("{}_BIN", name.to_uppercase());
    if let Ok(path) = std::env::var(&env) {
        return Ok(path.into());
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "no {name} binary under {}: run `cargo build --release --workspace` or set {env}",
                target.display()
            )
        })
}

/// Runs a command that must succeed (an `ip` or `tc` call).
pub fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e} (iproute2 is required)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One host: a namespace and its address on the lab's subnet.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub ns: String,
    pub addr: String,
    /// The switch's port towards this host: its egress is the host's downlink.
    port: String,
}

/// A process started in a host.
#[derive(Debug)]
struct Process {
    name: String,
    child: Child,
}

/// The hosts, the switch joining them and the processes started in them.
#[derive(Debug)]
pub struct Lab {
    id: String,
    switch_ns: String,
    /// The first three octets of the lab's /24.
    subnet: String,
    /// The test process's end of its link to the switch (in the root namespace).
    test_port: String,
    hosts: Vec<Host>,
    processes: Vec<Process>,
    /// The processes' output, `NAME.out` and `NAME.err`.
    dir: tempfile::TempDir,
}

impl Lab {
    /// The host number of the test process's own port.
    pub const TEST_HOST: u8 = 254;

    /// An empty lab on subnet `10.213.{subnet}.0/24`; `tag` (two or three letters) tells
    /// its namespaces apart from other labs'. Labs that may run at the same time need
    /// different subnets: the test process's port lives in the root namespace.
    pub fn new(tag: &str, subnet: u8) -> Result<Self, String> {
        let id = format!("{tag}{}", std::process::id());
        // Dropped on an early return, the lab removes what was made so far.
        let lab = Lab {
            switch_ns: format!("rv-{id}-sw"),
            subnet: format!("10.213.{subnet}"),
            test_port: format!("rv{id}"),
            id,
            hosts: Vec::new(),
            processes: Vec::new(),
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        run(&["ip", "netns", "add", &lab.switch_ns])?;
        let sw = lab.switch_ns.clone();
        run(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &sw, "link", "set", "br0", "up"])?;
        let port = format!("p{}", Self::TEST_HOST);
        run(&[
            "ip",
            "link",
            "add",
            &lab.test_port,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &sw,
        ])?;
        run(&["ip", "-n", &sw, "link", "set", &port, "master", "br0"])?;
        run(&["ip", "-n", &sw, "link", "set", &port, "up"])?;
        let test_addr = format!("{}.{}/24", lab.subnet, Self::TEST_HOST);
        run(&["ip", "addr", "add", &test_addr, "dev", &lab.test_port])?;
        run(&["ip", "link", "set", &lab.test_port, "up"])?;
        Ok(lab)
    }

    /// Adds host `name` as `.n` on the lab's subnet, plugged into the switch.
    pub fn add_host(&mut self, name: &str, n: u8) -> Result<Host, String> {
        let host = Host {
            name: name.to_string(),
            ns: format!("rv-{}-{name}", self.id),
            addr: format!("{}.{n}", self.subnet),
            port: format!("p{n}"),
        };
        let sw = self.switch_ns.as_str();
        run(&["ip", "netns", "add", &host.ns])?;
        // Created inside the switch namespace, its peer moved into the host: no name
        // ever lives in the root namespace, where it could collide.
        run(&[
            "ip", "-n", sw, "link", "add", &host.port, "type", "veth", "peer", "name", "eth0",
            "netns", &host.ns,
        ])?;
        run(&["ip", "-n", sw, "link", "set", &host.port, "master", "br0"])?;
        run(&["ip", "-n", sw, "link", "set", &host.port, "up"])?;
        run(&[
            "ip",
            "-n",
            &host.ns,
            "addr",
            "add",
            &format!("{}/24", host.addr),
            "dev",
            "eth0",
        ])?;
        run(&["ip", "-n", &host.ns, "link", "set", "eth0", "up"])?;
        run(&["ip", "-n", &host.ns, "link", "set", "lo", "up"])?;
        self.hosts.push(host.clone());
        Ok(host)
    }

    /// Shapes what `host` sends (`uplink`) or receives (its downlink) with a token bucket at
    /// `rate` (e.g. `20mbit`): a 32 kbit burst and up to 400 ms of queue before drops, like a
    /// modest access link. `change` replaces an earlier shaping of the same direction.
    pub fn shape(&self, host: &Host, uplink: bool, rate: &str, change: bool) -> Result<(), String> {
        let (ns, dev) = if uplink {
            (host.ns.as_str(), "eth0")
        } else {
            (self.switch_ns.as_str(), host.port.as_str())
        };
        let verb = if change { "change" } else { "add" };
        run(&[
            "ip", "netns", "exec", ns, "tc", "qdisc", verb, "dev", dev, "root", "handle", "1:",
            "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms",
        ])
    }

    /// Starts `program` in `host`, its stdout and stderr going to `name.out` and `name.err`
    /// in the lab's folder (never to a pipe nobody drains).
    pub fn spawn(
        &mut self,
        host: &Host,
        program: &Path,
        args: &[&str],
        name: &str,
    ) -> Result<(), String> {
        let file = |ext: &str| {
            std::fs::File::create(self.path(&format!("{name}.{ext}"))).map_err(|e| e.to_string())
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .arg(program)
            .args(args)
            .stdout(file("out")?)
            .stderr(file("err")?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        self.processes.push(Process {
            name: name.to_string(),
            child,
        });
        Ok(())
    }

    /// Waits (bounded) until process `name` printed `needle` on its stdout.
    pub fn wait_for_output(
        &mut self,
        name: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while !self.output(name, "out").contains(needle) {
            if let Some(status) = self.status(name)? {
                return Err(format!(
                    "{name} exited ({status}): {}",
                    self.output(name, "err")
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name} did not print {needle:?}: {}",
                    self.output(name, "err")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The exit status of process `name`, `None` while it runs.
    pub fn status(&mut self, name: &str) -> Result<Option<std::process::ExitStatus>, String> {
        let process = self
            .processes
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("no process {name}"))?;
        process.child.try_wait().map_err(|e| e.to_string())
    }

    /// Waits (bounded) for process `name` to end by itself.
    pub fn wait(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<std::process::ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status(name)? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not stop within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills process `name` (SIGKILL: a host that dies, not one that shuts down).
    pub fn kill(&mut self, name: &str) -> Result<(), String> {
        let process = self
            .processes
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("no process {name}"))?;
        process.child.kill().map_err(|e| e.to_string())?;
        process.child.wait().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// A file in the lab's folder.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// What process `name` wrote so far on `out` or `err`.
    pub fn output(&self, name: &str, ext: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.{ext}"))).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.processes {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "delete", &self.test_port])
            .status();
        // Deleting a namespace removes its end of every veth pair, and so the pair.
        for ns in self
            .hosts
            .iter()
            .map(|h| h.ns.as_str())
            .chain([self.switch_ns.as_str()])
        {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}
