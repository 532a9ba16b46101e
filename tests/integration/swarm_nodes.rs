//! Placement on the Swarm backend (issue 15, multi-node part) on a private swarm the test
//! starts: a bot placed on a node is constrained there and keeps its workspace in a volume on
//! that node; a placement no node can meet is refused at create and PATCH, changing nothing;
//! the Docker backend accepts only a placement its one engine meets.

use std::time::Duration;

use bollard::models::{MountType, ServiceSpec};
use bollard::query_parameters::InspectServiceOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::server::TestServer;
use crate::support::swarm::PrivateSwarm;
use crate::support::swarm_worker::TwoNodeSwarm;

const WAIT: Duration = Duration::from_secs(60);

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or_default()
}

async fn service_spec(s: &TestServer, id: &str) -> Option<ServiceSpec> {
    s.h.docker
        .client()
        .inspect_service(&format!("botmaker-{id}"), None::<InspectServiceOptions>)
        .await
        .ok()?
        .spec
}

fn constraints(spec: &ServiceSpec) -> Vec<String> {
    spec.task_template
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .and_then(|p| p.constraints.clone())
        .unwrap_or_default()
}

/// The host name of the only node, as `GET /api/nodes` names it.
async fn node_name(s: &TestServer) -> String {
    let (status, v) = s.get("/api/nodes").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["nodes"][0]["name"].as_str().unwrap().to_string()
}

async fn volume_exists(s: &TestServer, name: &str) -> bool {
    s.h.docker.client().inspect_volume(name).await.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_placed_bot_runs_on_its_node_with_its_workspace_in_a_volume_that_delete_removes() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let node = node_name(&s).await;
    let mut body = s.bot_body("place");
    body["placement"] = json!({ "node": node });
    body["secrets"] = json!({ "API_TOKEN": "placed-value" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["placement"], json!({ "node": node }), "{v}");
    s.wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;

    let spec = service_spec(&s, &id).await.expect("the service");
    assert_eq!(
        constraints(&spec),
        vec![format!("node.hostname=={node}")],
        "constrained to the node named, not pinned by node id to botmaker's"
    );
    let mounts = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.mounts)
        .unwrap();
    let volume = format!("botmaker-{id}-workspace");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
    assert_eq!(mounts[0].source.as_deref(), Some(volume.as_str()));
    assert!(
        volume_exists(&s, &volume).await,
        "Swarm made it on the node"
    );

    // The secret reaches the bot as on an unplaced one.
    let (status, v) = s
        .post(
            &format!("/api/bots/{id}/exec"),
            json!({ "cmd": ["/testbot", "cat", "/run/secrets/API_TOKEN"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["stdout"], "placed-value", "{v}");

    // Its workspace is not the host directory: a backup says so rather than archive an
    // empty directory as the bot's data.
    let (status, v) = s.get(&format!("/api/bots/{id}/backup")).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{v}");
    assert_eq!(v["code"], "UNSUPPORTED_BY_BACKEND", "{v}");

    // A PATCH keeps the workspace volume (the service is made again, the data stays).
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "env": { "TICK_MS": "300" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(volume_exists(&s, &volume).await, "kept across a PATCH");

    let (status, v) = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
    assert!(status.is_success(), "{status} {v}");
    assert!(service_spec(&s, &id).await.is_none(), "service gone");
    assert!(!volume_exists(&s, &volume).await, "workspace volume gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_refuses_a_placement_no_node_meets_at_create_and_patch_and_changes_nothing() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let node = node_name(&s).await;

    // Create: an unknown node is a field error naming the nodes there are; nothing is made.
    let mut body = s.bot_body("nowhere");
    let id = body["id"].as_str().unwrap().to_string();
    body["placement"] = json!({ "node": "no-such-node" });
    let (status, v) = s.post("/api/bots", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "VALIDATION_FAILED", "{v}");
    let message = v["fields"]["placement.node"].to_string();
    assert!(
        message.contains("no-such-node") && message.contains(&node),
        "{v}"
    );
    assert_eq!(
        s.get(&format!("/api/bots/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(service_spec(&s, &id).await.is_none(), "no service");

    // Labels no node carries.
    body["placement"] = json!({ "labels": { "zone": "mars" } });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["fields"]["placement.labels"]
            .to_string()
            .contains("zone=mars"),
        "{v}"
    );

    // An unplaced bot: the workspace bind-mounted from this node, pinned here, spread.
    let id = s.create_bot("later").await;
    s.wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;
    let before = service_spec(&s, &id).await.unwrap();
    let task = before.task_template.clone().unwrap();
    assert_eq!(
        task.container_spec
            .as_ref()
            .unwrap()
            .mounts
            .as_ref()
            .unwrap()[0]
            .typ,
        Some(MountType::BIND)
    );
    let placement = task.placement.unwrap();
    assert!(
        placement.constraints.unwrap()[0].starts_with("node.id=="),
        "pinned to botmaker's node"
    );
    assert_eq!(
        placement.preferences.unwrap()[0]
            .spread
            .as_ref()
            .unwrap()
            .spread_descriptor
            .as_deref(),
        Some("node.id")
    );

    // PATCH to an unknown node: refused, the bot and its service as they were.
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "placement": { "node": "no-such-node" } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["placement.node"].is_array(), "{v}");
    let (_, bot) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(bot["placement"], Value::Null, "{bot}");
    assert_eq!(service_spec(&s, &id).await.unwrap(), before);

    // Labels the node gets: accepted, the service constrained by them.
    let manager = swarm
        .engine
        .service("probe")
        .await
        .unwrap()
        .client()
        .info()
        .await
        .unwrap()
        .swarm
        .unwrap()
        .node_id
        .unwrap();
    label_node(&s, &manager, "zone", "eu").await;
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "placement": { "labels": { "zone": "eu" } } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["placement"], json!({ "labels": { "zone": "eu" } }), "{v}");
    let after = service_spec(&s, &id).await.unwrap();
    assert_eq!(
        constraints(&after),
        vec!["node.labels.zone==eu".to_string()]
    );
    s.wait_bot(&id, "running where the labels are", WAIT, |v| {
        state(v) == "running"
    })
    .await;
    let _ = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn placement_on_the_docker_backend_is_refused_unless_it_names_the_one_engine() {
    let s = TestServer::start().await;
    let (_, nodes) = s.get("/api/nodes").await;
    let engine = nodes["nodes"][0]["name"].as_str().unwrap().to_string();

    let mut body = s.bot_body("elsewhere");
    let id = body["id"].as_str().unwrap().to_string();
    body["placement"] = json!({ "node": "another-machine" });
    let (status, v) = s.post("/api/bots", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let message = v["fields"]["placement.node"].to_string();
    assert!(message.contains("--backend swarm"), "{v}");
    assert_eq!(
        s.get(&format!("/api/bots/{id}")).await.0,
        StatusCode::NOT_FOUND,
        "nothing made"
    );

    // The engine itself: accepted, and nothing changes for the container.
    body["placement"] = json!({ "node": engine });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["placement"]["node"], engine.as_str(), "{v}");
    s.wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;
    let _ = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
}

/// Adds the label `key=value` to node `id`, through the manager.
async fn label_node(s: &TestServer, id: &str, key: &str, value: &str) {
    let client = s.h.docker.client();
    let info = client.inspect_node(id).await.unwrap();
    let mut node_spec = info.spec.unwrap();
    node_spec
        .labels
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    client
        .update_node(
            id,
            node_spec,
            bollard::query_parameters::UpdateNodeOptionsBuilder::new()
                .version(info.version.unwrap().index.unwrap() as i64)
                .build(),
        )
        .await
        .unwrap();
}

/// The node ids of the bot's tasks Swarm wants running.
async fn running_task_nodes(s: &TestServer, id: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([
        ("service".to_string(), vec![format!("botmaker-{id}")]),
        ("desired-state".to_string(), vec!["running".to_string()]),
    ]);
    s.h.docker
        .client()
        .list_tasks(Some(
            bollard::query_parameters::ListTasksOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|t| t.node_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_bot_placed_on_a_worker_runs_there_and_is_missing_with_its_node_named_when_it_stops()
{
    let mut swarm = crate::support::swarm_worker::TwoNodeSwarm::start().await;
    let s = swarm.server().await;
    let worker_id = swarm.worker_node_id().await;
    let worker = swarm.worker.hostname.clone();
    let (_, nodes) = s.get("/api/nodes").await;
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 2, "{nodes}");

    let mut body = s.bot_body("onworker");
    body["placement"] = json!({ "node": worker });
    body["secrets"] = json!({ "API_TOKEN": "worker-value" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running on the worker", WAIT, |v| {
            state(v) == "running"
        })
        .await;
    assert_eq!(running_task_nodes(&s, &id).await, vec![worker_id.clone()]);
    assert_eq!(
        v["node"],
        worker.as_str(),
        "the bot view names its node: {v}"
    );

    // The bot sees its secret file: its own start-up lines say so, through the service's
    // logs (the manager's engine cannot exec into a container on another node).
    let logs = crate::support::eventually("the bot's start-up lines", WAIT, || async {
        let (status, v) = s.get(&format!("/api/bots/{id}/logs?tail=100")).await;
        let text = v.to_string();
        (status == StatusCode::OK && text.contains("secrets: API_TOKEN")).then_some(text)
    })
    .await;
    assert!(logs.contains("secrets: API_TOKEN"), "{logs}");
    // Exec cannot reach it: refused with an error, never run elsewhere.
    let (status, v) = s
        .post(
            &format!("/api/bots/{id}/exec"),
            json!({ "cmd": ["/testbot", "cat", "/run/secrets/API_TOKEN"] }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{v}");
    assert_eq!(v["code"], "UNSUPPORTED_BY_BACKEND", "{v}");
    assert!(v["error"].to_string().contains("another node"), "{v}");

    // The nodes view counts it on the worker.
    let nodes = crate::support::eventually("the bot counted on the worker", WAIT, || async {
        let (_, v) = s.get("/api/nodes").await;
        let on_worker = v["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["name"] == worker.as_str())?
            .clone();
        (on_worker["bots"] == 1).then_some(v)
    })
    .await;
    let manager = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] != worker.as_str())
        .unwrap();
    assert_eq!(manager["bots"], 0, "{nodes}");

    // The worker's engine stops: the bot is missing, on the node named, which is down.
    swarm.worker.stop().await;
    let v = s
        .wait_bot(&id, "missing with its node down", WAIT * 2, |v| {
            state(v) == "missing" && v["node_state"] != "ready"
        })
        .await;
    assert_eq!(v["node"], worker.as_str(), "{v}");
    assert_eq!(v["desired_state"], "running", "{v}");
    let _ = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_bot_placed_by_labels_is_rescheduled_on_another_node_when_its_node_stops() {
    let mut swarm = crate::support::swarm_worker::TwoNodeSwarm::start().await;
    let s = swarm.server().await;
    let worker_id = swarm.worker_node_id().await;
    let worker = swarm.worker.hostname.clone();
    // Only the worker carries the label at first: the bot starts there.
    label_node(&s, &worker_id, "pool", "bots").await;
    let mut body = s.bot_body("moves");
    body["placement"] = json!({ "labels": { "pool": "bots" } });
    body["secrets"] = json!({ "API_TOKEN": "moving-value" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running on the worker", WAIT, |v| {
            state(v) == "running" && v["node"] == worker.as_str()
        })
        .await;
    let first = v["container_id"].clone();

    // The manager's node gets the label too; then the worker's engine stops, and Swarm runs
    // the bot where its placement allows: on the manager, named so.
    let (_, nodes) = s.get("/api/nodes").await;
    let manager = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] != worker.as_str())
        .unwrap()
        .clone();
    label_node(&s, manager["id"].as_str().unwrap(), "pool", "bots").await;
    swarm.worker.stop().await;
    let v = s
        .wait_bot(&id, "running again on the manager", WAIT * 2, |v| {
            state(v) == "running" && v["node"] == manager["name"]
        })
        .await;
    assert_eq!(v["node_state"], "ready", "{v}");
    assert_ne!(v["container_id"], first, "a new task: {v}");
    // On the manager, exec reaches it again, and its secret came along.
    let (status, out) = s
        .post(
            &format!("/api/bots/{id}/exec"),
            json!({ "cmd": ["/testbot", "cat", "/run/secrets/API_TOKEN"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["stdout"], "moving-value", "{out}");
    let _ = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
}

/// The ids of the bot's containers on the worker's engine (as the worker names them).
async fn worker_containers(swarm: &TwoNodeSwarm, id: &str) -> Vec<String> {
    let w = swarm.worker.service().await.expect("the worker answers");
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("botmaker.bot-id={id}")],
    )]);
    w.client()
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// A container on a worker sends its events to the worker's engine only, and the Engine API
/// has no task events: before botmaker polled the tasks of other nodes, a bot killed on a
/// worker kept showing its dead container until the next full resync (here: none for an hour).
#[tokio::test(flavor = "multi_thread")]
async fn swarm_bot_killed_on_a_worker_shows_its_new_task_without_a_resync() {
    let swarm = TwoNodeSwarm::start().await;
    let s = swarm.server().await;
    let worker = swarm.worker.hostname.clone();
    let mut body = s.bot_body("killedonworker");
    body["placement"] = json!({ "node": worker });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running on the worker", WAIT, |v| {
            state(v) == "running" && v["container_id"].is_string()
        })
        .await;
    let first = v["container_id"].as_str().unwrap().to_string();
    assert_eq!(worker_containers(&swarm, &id).await, vec![first.clone()]);

    // Killed on the worker, behind the manager's back: Swarm starts a new task there.
    let w = swarm.worker.service().await.unwrap();
    w.client()
        .kill_container(
            &first,
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("the worker kills the bot's container");
    let v = s
        .wait_bot(&id, "running in a new container", WAIT, |v| {
            state(v) == "running" && v["container_id"].as_str().is_some_and(|c| c != first)
        })
        .await;
    let now = v["container_id"].as_str().unwrap().to_string();
    assert!(
        worker_containers(&swarm, &id).await.contains(&now),
        "the view's container is the worker's new one: {v}"
    );
    assert_eq!(v["node"], worker.as_str(), "{v}");
    let _ = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
}
