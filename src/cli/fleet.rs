//! The fleet file: many bots declared in TOML as `[[bot]]` tables with the fields of a create
//! request (secrets as names only). Parsed, then validated once into [`Fleet`]; also written by
//! `export`, and used (one bot) as the spec file of `bots create`.
//!
//! A field left out is not managed: `apply` neither sets nor compares it, so a file can pin only
//! what matters (`env = {}` clears the environment; a missing `env` leaves it alone).
//!
//! A declaration turns into the API's own bodies, [`CreateBot`] ([`create_body`]) and
//! [`UpdateBot`] ([`BotDecl::update`]), field by field: a setting the API gains does not
//! compile here until the file can declare it too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::CliError;
use crate::BotId;
use crate::api::{BotView, CreateBot, HttpProbe, LimitsSpec, Placement, PortSpec, UpdateBot};
use crate::secrets::SecretName;

/// The file as written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// The bots, in file order.
    #[serde(default, rename = "bot")]
    pub bots: Vec<BotDecl>,
}

/// One `[[bot]]` table. Unknown fields are rejected: a typo must not silently do nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotDecl {
    /// Bot id (a DNS label).
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Template (`generic`, `openclaw`); cannot change once the bot exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Command (exec form); `[]` means the image's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Whether the bot should run (`false`: created or kept stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<bool>,
    /// Names of secrets the bot must have; values never appear in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    /// Non-secret environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Published ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortSpec>>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,
    /// Docker network (the default bridge when the bot was made without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// botmaker's HTTP health probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HttpProbe>,
    /// `uid[:gid]` the container runs as (the image's `USER` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Template settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Value>,
    /// Seconds between SIGTERM and SIGKILL when the bot stops (1-600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout_secs: Option<u64>,
    /// Where the bot may run (`node`, `labels`); `placement = {}` lets it run anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

impl BotDecl {
    /// The declared settings as a PATCH: what `apply` sends, less the fields that do not
    /// differ. Secrets are not in it: `apply` sets only missing ones, one request each.
    pub fn update(&self) -> UpdateBot {
        // Field by field, both ways: a setting of either type cannot be left out.
        let Self {
            id: _,
            template: _,
            start: _,
            secrets: _,
            name,
            image,
            command,
            env,
            ports,
            limits,
            network,
            health_check,
            user,
            settings,
            stop_timeout_secs,
            placement,
        } = self;
        UpdateBot {
            name: name.clone(),
            image: image.clone(),
            command: command.clone(),
            env: env.clone(),
            secrets: None,
            ports: ports.clone(),
            limits: limits.clone(),
            network: network.clone().map(Some),
            health_check: health_check.clone().map(Some),
            user: user.clone().map(Some),
            settings: settings.clone(),
            stop_timeout_secs: stop_timeout_secs.map(Some),
            placement: placement.clone().map(Some),
            apply: true,
        }
    }
}

/// A declared bot whose id and secret names are valid.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredBot {
    /// Its id.
    pub id: BotId,
    /// Its secret names.
    pub secrets: Vec<SecretName>,
    /// Everything as declared.
    pub decl: BotDecl,
}

/// A validated fleet: unique, valid ids and secret names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    /// The bots, in file order.
    pub bots: Vec<DesiredBot>,
}

/// Parses and validates the fleet file at `path` whose content is `text`.
pub fn parse(path: &Path, text: &str) -> Result<Fleet, CliError> {
    let file: FleetFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut bots = Vec::new();
    for (i, decl) in file.bots.into_iter().enumerate() {
        match validate(decl) {
            Ok(bot) if !seen.insert(bot.id.clone()) => {
                problems.push(format!("bot '{}' is declared twice", bot.id));
            }
            Ok(bot) => bots.push(bot),
            Err(why) => problems.push(format!("[[bot]] #{}: {why}", i + 1)),
        }
    }
    if problems.is_empty() {
        Ok(Fleet { bots })
    } else {
        Err(CliError::usage(format!(
            "{}: {}",
            path.display(),
            problems.join("; ")
        )))
    }
}

/// Parses a `bots create` spec file: one bot's fields at the top level, or a fleet file
/// holding exactly one bot. JSON when the name ends in `.json`, else TOML.
pub fn parse_spec(path: &Path, text: &str) -> Result<BotDecl, CliError> {
    let bad = |why: String| CliError::usage(format!("{}: {why}", path.display()));
    if path.extension().is_some_and(|e| e == "json") {
        return serde_json::from_str(text).map_err(|e| bad(e.to_string()));
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    if !table.contains_key("bot") {
        return toml::from_str(text).map_err(|e| toml_error(path, text, &e));
    }
    let mut file: FleetFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    match file.bots.len() {
        1 => Ok(file.bots.remove(0)),
        n => Err(bad(format!(
            "a spec file declares one bot, this one {n}: use `botmaker apply -f` for a fleet"
        ))),
    }
}

/// Checks the id and secret names of `decl`.
pub fn validate(decl: BotDecl) -> Result<DesiredBot, String> {
    let id = BotId::new(decl.id.clone()).map_err(|e| format!("id {:?}: {e}", decl.id))?;
    let mut secrets = Vec::new();
    for name in decl.secrets.iter().flatten() {
        let name = SecretName::new(name.clone())
            .map_err(|e| format!("bot '{id}': secret {name:?}: {e}"))?;
        if secrets.contains(&name) {
            return Err(format!("bot '{id}': secret {name} is listed twice"));
        }
        secrets.push(name);
    }
    Ok(DesiredBot { id, secrets, decl })
}

/// One line with the line number: the TOML crate's own rendering spans several lines.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> CliError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
    CliError::usage(format!("{}{at}: {}", path.display(), e.message().trim()))
}

/// The body of `POST /api/bots` for `bot`, with these secret values.
pub fn create_body(
    bot: &DesiredBot,
    values: &BTreeMap<SecretName, Vec<u8>>,
) -> Result<CreateBot, String> {
    let BotDecl {
        id: _,
        name,
        template,
        image,
        command,
        start,
        secrets: _,
        env,
        ports,
        limits,
        network,
        health_check,
        user,
        settings,
        stop_timeout_secs,
        placement,
    } = &bot.decl;
    Ok(CreateBot {
        id: bot.id.to_string(),
        name: name.clone(),
        template: template.clone(),
        image: image.clone(),
        command: command.clone(),
        env: env.clone().unwrap_or_default(),
        secrets: secret_values(values)?,
        ports: ports.clone().unwrap_or_default(),
        limits: limits.clone().unwrap_or_default(),
        network: network.clone(),
        health_check: health_check.clone(),
        user: user.clone(),
        settings: settings.clone().unwrap_or_default(),
        stop_timeout_secs: *stop_timeout_secs,
        placement: placement.clone().filter(|p| !p.is_empty()),
        start: start.unwrap_or(true),
    })
}

/// Secret values as text (the create and update bodies take text values).
pub fn secret_values(
    values: &BTreeMap<SecretName, Vec<u8>>,
) -> Result<BTreeMap<String, String>, String> {
    values
        .iter()
        .map(|(name, v)| match std::str::from_utf8(v) {
            Ok(s) => Ok((name.to_string(), s.to_string())),
            Err(_) => Err(format!(
                "secret {name} is not UTF-8 text; set it with `botmaker secrets set` instead"
            )),
        })
        .collect()
}

/// `bot` as a fleet-file entry: every field it has, empty ones left out.
pub fn from_remote(bot: &BotView) -> BotDecl {
    let mut settings = bot.settings.clone();
    strip_nulls(&mut settings);
    BotDecl {
        id: bot.id.clone(),
        name: Some(bot.name.clone()),
        template: Some(bot.template.clone()),
        image: Some(bot.image.clone()),
        command: bot.command.clone().filter(|c| !c.is_empty()),
        start: Some(bot.wants_running()),
        secrets: Some(bot.secrets.clone()).filter(|s| !s.is_empty()),
        env: Some(bot.env.clone()).filter(|e| !e.is_empty()),
        ports: Some(bot.spec().ports).filter(|p| !p.is_empty()),
        limits: Some(bot.limits.clone()).filter(|l| *l != LimitsSpec::default()),
        network: bot.network.clone(),
        health_check: bot.health_check.clone(),
        user: bot.user.clone(),
        settings: Some(settings).filter(|s| !is_empty_settings(s)),
        stop_timeout_secs: bot.stop_timeout_secs,
        placement: bot.placement.clone(),
    }
}

/// Serializes `bots` as a fleet file.
pub fn to_toml(bots: Vec<BotDecl>) -> Result<String, String> {
    toml::to_string(&FleetFile { bots }).map_err(|e| e.to_string())
}

/// Whether settings amount to none (`null` or `{}`).
pub fn is_empty_settings(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(Map::is_empty)
}

/// Removes `null`s, which TOML cannot express (a missing key means the same to the server).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => {
            a.retain(|v| !v.is_null());
            a.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// A bot as the server would show it, for tests: `generic`, image `img:1`, running.
#[cfg(test)]
pub fn test_view(id: &str) -> BotView {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": id, "template": "generic", "image": "img:1", "env": {},
        "secrets": [], "ports": [], "limits": {}, "settings": null, "desired_state": "running",
        "state": "running", "health": "none", "restart_count": 0, "oom_killed": false,
        "image_drift": false, "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }))
    .expect("a bot view")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"
[[bot]]
id = "alpha"
image = "img:1"
secrets = ["API_KEY"]
env = { MODE = "fast" }
ports = [{ container = 8080 }]
limits = { memory_mb = 64 }
settings = { a = { b = [1, 2] } }

[[bot]]
id = "beta"
start = false
"#;

    #[test]
    fn a_fleet_file_parses_into_validated_bots() {
        let fleet = parse(Path::new("f.toml"), FILE).unwrap();
        assert_eq!(fleet.bots.len(), 2);
        let a = &fleet.bots[0];
        assert_eq!(a.id.as_str(), "alpha");
        assert_eq!(a.secrets, vec![SecretName::new("API_KEY").unwrap()]);
        assert_eq!(a.decl.ports.as_ref().unwrap()[0].container, 8080);
        assert_eq!(a.decl.settings, Some(json!({ "a": { "b": [1, 2] } })));
        assert_eq!(fleet.bots[1].decl.start, Some(false));
        assert_eq!(fleet.bots[1].decl.env, None);
    }

    #[test]
    fn problems_are_one_line_with_where() {
        let e = parse(Path::new("f.toml"), "[[bot]]\nid = \"a\"\nimgae = \"x\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("f.toml:3: unknown field `imgae`"), "{msg}");
        assert!(!msg.contains('\n'));
        assert_eq!(e.exit_code(), 2);

        let dup = "[[bot]]\nid = \"a\"\n[[bot]]\nid = \"a\"\n";
        assert!(
            parse(Path::new("f"), dup)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let bad_id = "[[bot]]\nid = \"Not_A_Label\"\n";
        assert!(
            parse(Path::new("f"), bad_id)
                .unwrap_err()
                .to_string()
                .contains("#1")
        );
        let bad_secret = "[[bot]]\nid = \"a\"\nsecrets = [\"lower\"]\n";
        assert!(parse(Path::new("f"), bad_secret).is_err());
    }

    #[test]
    fn spec_files_hold_one_bot_in_either_shape() {
        let top = parse_spec(Path::new("s.toml"), "id = \"a\"\nimage = \"i\"\n").unwrap();
        assert_eq!((top.id.as_str(), top.image.as_deref()), ("a", Some("i")));
        let one = parse_spec(Path::new("s.toml"), "[[bot]]\nid = \"b\"\n").unwrap();
        assert_eq!(one.id, "b");
        assert!(parse_spec(Path::new("s.toml"), FILE).is_err());
        let j = parse_spec(Path::new("s.json"), r#"{"id":"c","start":false}"#).unwrap();
        assert_eq!(j.start, Some(false));
    }

    #[test]
    fn create_bodies_carry_only_declared_fields_and_secret_values() {
        let bot = parse(Path::new("f"), FILE).unwrap().bots.remove(1);
        let body = |values: &BTreeMap<SecretName, Vec<u8>>| {
            serde_json::to_value(create_body(&bot, values).unwrap()).unwrap()
        };
        assert_eq!(
            body(&BTreeMap::new()),
            json!({ "id": "beta", "start": false })
        );
        let values = BTreeMap::from([(SecretName::new("K").unwrap(), b"v".to_vec())]);
        assert_eq!(body(&values)["secrets"], json!({ "K": "v" }));
        let binary = BTreeMap::from([(SecretName::new("K").unwrap(), vec![0xff])]);
        assert!(create_body(&bot, &binary).is_err());
    }

    #[test]
    fn export_writes_what_parse_reads_back() {
        let mut remote = test_view("alpha");
        remote.name = "Alpha".into();
        remote.env = BTreeMap::from([("A".into(), "1".into())]);
        remote.secrets = vec!["API_KEY".into()];
        remote.ports = vec![crate::bots::PortView {
            container: 80,
            host: Some(32768),
            host_ip: None,
            protocol: Default::default(),
            publish: Default::default(),
            auto: true,
        }];
        remote.network = Some("bots".into());
        remote.settings = json!({ "x": null, "y": { "z": 1 } });
        remote.desired_state = crate::api::DesiredState::Stopped;
        let text = to_toml(vec![from_remote(&remote)]).unwrap();
        let back = parse(Path::new("e"), &text).unwrap().bots.remove(0).decl;
        assert_eq!(back.start, Some(false));
        assert_eq!(back.secrets, Some(vec!["API_KEY".to_string()]));
        assert_eq!(back.settings, Some(json!({ "y": { "z": 1 } })));
        let port = &back.ports.unwrap()[0];
        assert_eq!(port.container, 80);
        assert_eq!(
            port.host, None,
            "a host port Docker picked is not configuration"
        );
        assert_eq!(back.limits, None);
        assert_eq!(back.command, None);
        assert_eq!(back.network.as_deref(), Some("bots"));
        assert_eq!(back.stop_timeout_secs, None);
    }

    /// The oc-image branch gave bots a stop grace (`stop_timeout_secs`, OpenClaw's default 90 s)
    /// that fleet files could not declare, export or apply.
    #[test]
    fn a_fleet_file_declares_exports_and_applies_the_stop_grace() {
        let bot = parse(
            Path::new("f"),
            "[[bot]]\nid = \"oc\"\nstop_timeout_secs = 120\n",
        )
        .unwrap()
        .bots
        .remove(0);
        assert_eq!(bot.decl.stop_timeout_secs, Some(120));
        let body = create_body(&bot, &BTreeMap::new()).unwrap();
        assert_eq!(body.stop_timeout_secs, Some(120));
        assert_eq!(bot.decl.update().stop_timeout_secs, Some(Some(120)));
        // Left out, it is not managed: the PATCH does not touch it.
        let quiet = parse(Path::new("f"), "[[bot]]\nid = \"oc\"\n")
            .unwrap()
            .bots
            .remove(0);
        assert_eq!(quiet.decl.update().stop_timeout_secs, None);

        let mut remote = test_view("oc");
        remote.stop_timeout_secs = Some(90);
        let text = to_toml(vec![from_remote(&remote)]).unwrap();
        assert!(text.contains("stop_timeout_secs = 90"), "{text}");
        let back = parse(Path::new("e"), &text).unwrap().bots.remove(0).decl;
        assert_eq!(back.stop_timeout_secs, Some(90));

        let too_long = parse(
            Path::new("f"),
            "[[bot]]\nid = \"oc\"\nstop_timeout_secs = -1\n",
        );
        assert!(too_long.is_err(), "a negative grace is not a u64");
    }
}
