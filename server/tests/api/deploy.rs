//! The deployment descriptions: the Kubernetes manifests (deploy/k8s),
//! docker-compose.yml and the edge template, checked against their schemas
//! and against what the server relies on — probes on the right endpoints, a
//! grace period that covers the drain, timeouts above the Socket.IO
//! keep-alive, settings the server actually reads, references that resolve.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;
use taskmaster_server::config::Config;
use taskmaster_server::startup::DRAIN_TIMEOUT;

use crate::helpers::python_test_tool;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `kubectl kustomize` of a kustomization directory.
fn kustomize(dir: &str) -> String {
    let output = Command::new("kubectl")
        .args(["kustomize", &repo().join(dir).display().to_string()])
        .output()
        .expect("kubectl runs (scripts/test.sh checks for it)");
    assert!(
        output.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

/// Validates `yaml` strictly against the Kubernetes 1.30 schemas; Err with
/// the validator's report.
fn validate(yaml: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    let output = Command::new(python_test_tool("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", "1.30.0"])
        .arg(file.path())
        .output()
        .expect("kubernetes-validate runs (scripts/test.sh installs it from PyPI)");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Every environment variable the server reads, from its own `--help`.
fn server_settings() -> BTreeSet<String> {
    let settings = settings_in_help(&["--help"]);
    assert!(settings.contains("DATABASE_URL"), "{settings:?}");
    settings
}

/// Every environment variable `taskmaster probe` reads.
fn probe_settings() -> BTreeSet<String> {
    let settings = settings_in_help(&["probe", "--help"]);
    assert!(settings.contains("PROBE_URL"), "{settings:?}");
    settings
}

fn settings_in_help(args: &[&str]) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_taskmaster"))
        .args(args)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    help.split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(str::to_owned)
        .collect()
}

fn resource<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
    all.iter()
        .find(|r| r["kind"] == kind && r["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// A generated name (`name-<hash>`) or the name itself.
fn named<'a>(all: &'a [Value], kind: &str, base: &str) -> &'a Value {
    all.iter()
        .find(|r| {
            r["kind"] == kind
                && r["metadata"]["name"].as_str().is_some_and(|n| {
                    n == base || n.rsplit_once('-').is_some_and(|(b, _)| b == base)
                })
        })
        .unwrap_or_else(|| panic!("no {kind} {base}"))
}

fn str_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_mapping()
        .is_some_and(|wanted| wanted.iter().all(|(key, value)| &labels[key] == value))
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    for dir in ["deploy/k8s/base", "deploy/k8s/overlays/example"] {
        let rendered = kustomize(dir);
        validate(&rendered).unwrap_or_else(|report| panic!("{dir}:\n{report}"));
    }
    // The validator does reject what Kubernetes would: an unknown field.
    let broken =
        kustomize("deploy/k8s/overlays/example").replacen("readinessProbe:", "readinessProbes:", 1);
    assert!(
        validate(&broken).is_err(),
        "a misspelt field passed validation"
    );
}

#[test]
fn kubernetes_manifests_hold_what_the_server_relies_on() {
    let all = documents(&kustomize("deploy/k8s/overlays/example"));
    let settings = server_settings();

    let deployment = resource(&all, "Deployment", "taskmaster");
    let pod = &deployment["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    assert!(labels_match(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        container["image"], "registry.example.com/taskmaster:0.1.0",
        "the overlay pins the image"
    );

    // Probes: ready on /readyz, alive on /healthz, on the container's port.
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["port"], container["ports"][0]["name"],
            "{probe}"
        );
    }
    // The config's BIND port is the container's port.
    let config = named(&all, "ConfigMap", "taskmaster-config");
    let bind = str_of(&config["data"]["BIND"]);
    assert_eq!(
        bind.rsplit(':').next().unwrap().parse::<u64>().unwrap(),
        container["ports"][0]["containerPort"].as_u64().unwrap()
    );

    // Metrics on a port of their own: the one METRICS_BIND names, scraped
    // there, and never the port the Service and the Ingress forward.
    let metrics_port = container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|port| port["name"] == "metrics")
        .expect("a container port named metrics");
    let metrics_bind = str_of(&config["data"]["METRICS_BIND"]);
    assert_eq!(
        metrics_bind
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        metrics_port["containerPort"].as_u64().unwrap()
    );
    assert_eq!(
        str_of(&pod["metadata"]["annotations"]["prometheus.io/port"]),
        metrics_port["containerPort"].as_u64().unwrap().to_string()
    );
    let service = resource(&all, "Service", "taskmaster");
    for port in service["spec"]["ports"].as_sequence().unwrap() {
        assert_ne!(
            port["targetPort"], "metrics",
            "the Service forwards metrics"
        );
    }

    // Termination: preStop (time for the ingress to drop the pod), then the
    // server's drain, then margin; all inside the grace period.
    let pre_stop = &container["lifecycle"]["preStop"]["exec"]["command"];
    assert_eq!(pre_stop[0], "sleep");
    let pre_stop_seconds: u64 = str_of(&pre_stop[1]).parse().unwrap();
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        grace >= pre_stop_seconds + DRAIN_TIMEOUT.as_secs() + 5,
        "grace period {grace} s < preStop {pre_stop_seconds} s + drain {} s + 5 s",
        DRAIN_TIMEOUT.as_secs()
    );
    // Rolling updates never drop below the wanted number of pods.
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );

    // Requests and a memory limit, inside the 512 MB-per-instance budget's neighbourhood.
    let resources = &container["resources"];
    for key in ["cpu", "memory"] {
        assert!(resources["requests"][key].is_string(), "requests.{key}");
    }
    assert!(resources["limits"]["memory"].is_string());

    // Every setting handed to the server is one it reads.
    for reference in container["envFrom"].as_sequence().unwrap() {
        let (kind, base) = if reference["configMapRef"].is_mapping() {
            ("ConfigMap", &reference["configMapRef"]["name"])
        } else {
            ("Secret", &reference["secretRef"]["name"])
        };
        let source = resource(&all, kind, str_of(base));
        for key in source["data"].as_mapping().unwrap().keys() {
            assert!(
                settings.contains(str_of(key)),
                "{kind} {base:?} sets {key:?}, which the server does not read"
            );
        }
    }
    let secret = named(&all, "Secret", "taskmaster-secrets");
    assert!(secret["data"]["DATABASE_URL"].is_string());

    // The Service, PDB and HPA point at these pods.
    let service = resource(&all, "Service", "taskmaster");
    assert!(labels_match(&service["spec"]["selector"], pod_labels));
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
    let pdb = resource(&all, "PodDisruptionBudget", "taskmaster");
    assert!(labels_match(
        &pdb["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    let hpa = resource(&all, "HorizontalPodAutoscaler", "taskmaster");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "taskmaster");
    assert_eq!(hpa["spec"]["minReplicas"], 5, "the overlay's patch applies");
    let metrics: Vec<&str> = hpa["spec"]["metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| match str_of(&m["type"]) {
            "Resource" => str_of(&m["resource"]["name"]),
            "Pods" => str_of(&m["pods"]["metric"]["name"]),
            other => panic!("unexpected metric type {other}"),
        })
        .collect();
    assert_eq!(metrics, ["cpu", "realtime_connections"]);
    let source = std::fs::read_to_string(repo().join("server/src/realtime/handlers.rs")).unwrap();
    assert!(
        source.contains("gauge!(\"realtime_connections\")"),
        "the server exports the HPA's metric"
    );

    // Ingress: sticky by cookie, timeouts above ping interval + timeout,
    // body limit above the server's.
    let ingress = resource(&all, "Ingress", "taskmaster");
    let annotation = |name: &str| {
        str_of(&ingress["metadata"]["annotations"][format!("nginx.ingress.kubernetes.io/{name}")])
            .to_owned()
    };
    assert_eq!(annotation("affinity"), "cookie");
    assert_eq!(annotation("session-cookie-name"), "tm_route");
    let keep_alive_ms: u64 = ["SOCKET_PING_INTERVAL_MS", "SOCKET_PING_TIMEOUT_MS"]
        .iter()
        .map(|key| str_of(&config["data"][*key]).parse::<u64>().unwrap())
        .sum();
    for timeout in ["proxy-read-timeout", "proxy-send-timeout"] {
        let seconds: u64 = annotation(timeout).parse().unwrap();
        assert!(
            seconds * 1000 > keep_alive_ms,
            "{timeout} {seconds} s ≤ ping interval + timeout"
        );
    }
    let body_mb: usize = annotation("proxy-body-size")
        .trim_end_matches('m')
        .parse()
        .unwrap();
    assert!(body_mb * 1024 * 1024 > Config::defaults().max_body_bytes);
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], "taskmaster");
    assert_eq!(backend["port"]["name"], service["spec"]["ports"][0]["name"]);
    assert_eq!(
        ingress["spec"]["rules"][0]["host"], "tasks.example.org",
        "the overlay's host"
    );

    // The database URLs name services that exist.
    for service_name in ["postgres", "postgres-replica", "redis"] {
        resource(&all, "Service", service_name);
    }
    assert_eq!(str_of(&config["data"]["REDIS_URL"]), "redis://redis:6379");

    // The synthetic probe: every minute, one at a time, the same image,
    // reading only settings the probe has, aimed at the Service.
    let probe = resource(&all, "CronJob", "taskmaster-probe");
    assert_eq!(probe["spec"]["schedule"], "* * * * *");
    assert_eq!(probe["spec"]["concurrencyPolicy"], "Forbid");
    let job = &probe["spec"]["jobTemplate"]["spec"];
    assert!(job["activeDeadlineSeconds"].as_u64().unwrap() < 60);
    let probe_container = &job["template"]["spec"]["containers"][0];
    assert_eq!(probe_container["image"], container["image"]);
    assert_eq!(probe_container["args"][0], "probe");
    let wanted = probe_settings();
    let mut given = BTreeSet::new();
    for variable in probe_container["env"].as_sequence().unwrap() {
        given.insert(str_of(&variable["name"]).to_owned());
    }
    let probe_secret_name = str_of(&probe_container["envFrom"][0]["secretRef"]["name"]);
    let probe_secret = named(&all, "Secret", probe_secret_name);
    for key in probe_secret["data"].as_mapping().unwrap().keys() {
        given.insert(str_of(key).to_owned());
    }
    for key in &given {
        assert!(
            wanted.contains(key),
            "the probe is given {key}, which it does not read"
        );
    }
    for key in ["PROBE_URL", "PROBE_EMAIL", "PROBE_PASSWORD"] {
        assert!(given.contains(key), "the probe lacks {key}");
    }
    let target = probe_container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|variable| variable["name"] == "PROBE_URL")
        .unwrap();
    assert_eq!(
        str_of(&target["value"]).trim_start_matches("http://"),
        str_of(&service["metadata"]["name"])
    );
}

#[test]
fn compose_file_follows_the_spec_and_its_references_resolve() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let typed = compose_spec::Compose::options()
        .apply_merge(true)
        .from_yaml_str(&text)
        .unwrap_or_else(|error| panic!("docker-compose.yml is not a valid Compose file: {error}"));
    typed
        .validate_all()
        .expect("networks, volumes, configs and secrets resolve");

    let compose: Value = serde_yaml::from_str(&text).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().map(str_of).collect();
    for wanted in [
        "postgres",
        "postgres-replica",
        "redis",
        "migrate",
        "app1",
        "app2",
        "app3",
        "nginx",
    ] {
        assert!(names.contains(wanted), "no service {wanted}");
    }
    let settings = server_settings();
    let apps: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("app"))
        .collect();
    for (name, service) in services {
        let name = str_of(name);
        // depends_on names services that exist.
        if let Some(dependencies) = service["depends_on"].as_mapping() {
            for dependency in dependencies.keys() {
                assert!(
                    names.contains(str_of(dependency)),
                    "{name} depends on unknown {dependency:?}"
                );
            }
        }
        // Files mounted from the repository exist.
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = str_of(volume).split(':').next().unwrap();
            if source.starts_with("./") {
                assert!(
                    repo().join(source).exists(),
                    "{name} mounts missing {source}"
                );
            }
        }
        if let Some(context) = service["build"].as_str() {
            assert!(
                repo().join(context).join("Dockerfile").is_file(),
                "{name}: no Dockerfile in {context}"
            );
        }
    }
    for app in &apps {
        let service = &services[*app];
        let environment = service["environment"].as_mapping().unwrap();
        for key in environment.keys() {
            assert!(
                settings.contains(str_of(key)),
                "{app} sets {key:?}, which the server does not read"
            );
        }
        let host_of = |key: &str| {
            let url = str_of(&service["environment"][key]);
            url.split('@')
                .next_back()
                .unwrap()
                .rsplit("//")
                .next()
                .unwrap()
                .split([':', '/'])
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(host_of("DATABASE_URL"), "postgres");
        assert_eq!(host_of("DATABASE_REPLICA_URLS"), "postgres-replica");
        assert_eq!(host_of("REDIS_URL"), "redis");
        let traces = host_of("OTEL_EXPORTER_OTLP_ENDPOINT");
        assert!(
            services.contains_key(&traces),
            "{app}: no {traces} service for traces"
        );
        let grace = str_of(&service["stop_grace_period"])
            .trim_end_matches('s')
            .parse::<u64>()
            .unwrap();
        assert!(
            grace > DRAIN_TIMEOUT.as_secs(),
            "{app}: stop_grace_period {grace} s ≤ the drain"
        );
    }
    // Prometheus scrapes exactly the app services, on their metrics port.
    for wanted in ["prometheus", "alertmanager", "grafana"] {
        assert!(names.contains(wanted), "no service {wanted}");
    }
    let scrape: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("deploy/monitoring/prometheus/prometheus.yml"))
            .unwrap(),
    )
    .unwrap();
    let targets: BTreeSet<String> = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|target| str_of(target).to_owned())
        .collect();
    let metrics_port = str_of(&services[apps[0]]["environment"]["METRICS_BIND"])
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let expected: BTreeSet<String> = apps
        .iter()
        .map(|app| format!("{app}:{metrics_port}"))
        .collect();
    assert_eq!(targets, expected);
    // The edge sends to exactly the app services, on their port.
    let upstreams: BTreeSet<String> = str_of(&services["nginx"]["environment"]["EDGE_UPSTREAMS"])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let port = str_of(&services[apps[0]]["environment"]["BIND"])
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let expected: BTreeSet<String> = apps.iter().map(|app| format!("{app}:{port}")).collect();
    assert_eq!(upstreams, expected);

    // The synthetic probe runs `taskmaster probe` through the edge, with
    // settings the probe reads, trusting the edge's certificate.
    let probe = &services["probe"];
    let wanted = probe_settings();
    for key in probe["environment"].as_mapping().unwrap().keys() {
        assert!(
            wanted.contains(str_of(key)),
            "probe sets {key:?}, which it does not read"
        );
    }
    assert_eq!(str_of(&probe["network_mode"]), "service:nginx");
    assert!(str_of(&probe["command"][0]).contains("taskmaster probe"));
    assert!(probe["volumes"][0]
        .as_str()
        .unwrap()
        .starts_with("edge:/var/lib/edge"));
}

#[test]
fn the_edge_waits_longer_than_the_socket_keep_alive() {
    let template = std::fs::read_to_string(repo().join("nginx/nginx.conf.template")).unwrap();
    let socket_location = template
        .split("location /socket.io/")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    let read_timeout: u64 = socket_location
        .lines()
        .find_map(|line| line.trim().strip_prefix("proxy_read_timeout "))
        .unwrap()
        .trim_end_matches(';')
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let defaults = Config::defaults();
    assert!(
        read_timeout * 1000 > defaults.socket_ping_interval_ms + defaults.socket_ping_timeout_ms,
        "proxy_read_timeout {read_timeout} s would cut idle sockets"
    );
    let body = template
        .lines()
        .find_map(|line| line.trim().strip_prefix("client_max_body_size "))
        .unwrap();
    let body_mb: usize = body
        .trim_end_matches(';')
        .trim_end_matches('m')
        .parse()
        .unwrap();
    assert!(
        body_mb * 1024 * 1024 > defaults.max_body_bytes,
        "the edge refuses bodies the server accepts"
    );
}

#[test]
fn monitoring_manifests_validate_and_carry_every_dashboard_and_rule_file() {
    let yaml = kustomize("deploy/monitoring");
    validate(&yaml).unwrap_or_else(|report| panic!("deploy/monitoring:\n{report}"));
    let all = documents(&yaml);
    let dashboards = resource(&all, "ConfigMap", "taskmaster-grafana-dashboards");
    assert_eq!(
        str_of(&dashboards["metadata"]["labels"]["grafana_dashboard"]),
        "1",
        "the Grafana sidecar picks dashboards by this label"
    );
    let on_disk: BTreeSet<String> =
        std::fs::read_dir(repo().join("deploy/monitoring/grafana/dashboards"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    let shipped: BTreeSet<String> = dashboards["data"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|key| str_of(key).to_owned())
        .collect();
    assert_eq!(shipped, on_disk, "every dashboard is in the ConfigMap");
    let rules = resource(&all, "ConfigMap", "taskmaster-alert-rules");
    assert_eq!(
        str_of(&rules["data"]["alerts.yml"]),
        std::fs::read_to_string(repo().join("deploy/monitoring/prometheus/alerts.yml")).unwrap()
    );
    resource(&all, "ConfigMap", "taskmaster-alertmanager");
}
