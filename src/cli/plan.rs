//! What `apply` would do: the declared fleet compared with the server's bots, field by field,
//! into a list of steps. Pure: no I/O, so every rule is unit-tested here.
//!
//! Only declared fields are compared (see [`super::fleet`]), after the bot's template has
//! filled in its defaults as the server would. Secrets are compared by name: a declared name
//! the bot lacks is set; values on the server are never read or compared.
//!
//! No setting is named here: the declaration becomes the API's PATCH body
//! ([`super::fleet::BotDecl::update`]), laid over the server's spec with the server's own
//! [`UpdateBot::apply_to`], and the fields whose result differs are what the plan patches. A
//! setting the API gains is compared and applied without a change to this file.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::fleet::{DesiredBot, Fleet, is_empty_settings};
use crate::BotId;
use crate::api::{BotView, UpdateBot};
use crate::bots::templates;
use crate::bots::{BotSpec, FieldErrors};
use crate::docker::BindScope;
use crate::secrets::SecretName;

/// One thing to do to one bot.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The bot does not exist: create it.
    Create(Box<DesiredBot>),
    /// The bot differs: change it.
    Update(Box<Update>),
    /// The bot matches the file.
    Unchanged(BotId),
    /// The bot is not in the file and `--prune` was given.
    Delete(String),
    /// The difference cannot be applied in place.
    Conflict {
        /// The bot.
        id: BotId,
        /// Why, and what to do.
        reason: String,
    },
}

impl Step {
    /// The bot this step is about.
    pub fn id(&self) -> &str {
        match self {
            Self::Create(b) => b.id.as_str(),
            Self::Update(u) => u.id.as_str(),
            Self::Unchanged(id) | Self::Conflict { id, .. } => id.as_str(),
            Self::Delete(id) => id,
        }
    }
}

/// The changes to an existing bot.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The bot.
    pub id: BotId,
    /// `PATCH /api/bots/{id}` body with the differing fields (none: no PATCH).
    pub patch: UpdateBot,
    /// Declared secrets the bot lacks.
    pub missing_secrets: Vec<SecretName>,
    /// `Some(true)`: start it; `Some(false)`: stop it.
    pub run: Option<bool>,
}

impl Update {
    /// The names of the fields the PATCH sets, sorted.
    pub fn patched_fields(&self) -> Vec<String> {
        fields_of(&self.patch).keys().cloned().collect()
    }

    /// Whether there is anything to PATCH.
    pub fn needs_patch(&self) -> bool {
        !fields_of(&self.patch).is_empty()
    }

    /// The PATCH without the image, and the new image if any: a changed image goes through
    /// the health-gated upgrade rather than the PATCH, and the rest only if something is left.
    pub fn split_image(&self) -> (Option<UpdateBot>, Option<String>) {
        let mut patch = self.patch.clone();
        let image = patch.image.take();
        let rest = (!fields_of(&patch).is_empty()).then_some(patch);
        (rest, image)
    }

    /// What changes, for the plan and the report: `image, env, secrets, stop`.
    pub fn summary(&self) -> String {
        let mut parts = self.patched_fields();
        if !self.missing_secrets.is_empty() {
            let names: Vec<&str> = self.missing_secrets.iter().map(|n| n.as_str()).collect();
            parts.push(format!("secrets +{}", names.join(" +")));
        }
        match self.run {
            Some(true) => parts.push("start".into()),
            Some(false) => parts.push("stop".into()),
            None => {}
        }
        parts.join(", ")
    }
}

/// The steps, in file order, then deletions; and how many server bots are left alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// What to do.
    pub steps: Vec<Step>,
    /// Bots on the server the file does not declare, kept because `--prune` was not given.
    pub left_alone: usize,
}

/// Compares `fleet` with the server's `current` bots.
pub fn plan(fleet: &Fleet, current: &[BotView], prune: bool) -> Plan {
    let mut steps = Vec::new();
    for bot in &fleet.bots {
        let step = match current.iter().find(|r| r.id == bot.id.as_str()) {
            None => Step::Create(Box::new(bot.clone())),
            Some(remote) => compare(bot, remote),
        };
        steps.push(step);
    }
    let declared: BTreeSet<&str> = fleet.bots.iter().map(|b| b.id.as_str()).collect();
    let mut extra: Vec<String> = current
        .iter()
        .filter(|r| !declared.contains(r.id.as_str()))
        .map(|r| r.id.clone())
        .collect();
    extra.sort();
    let left_alone = if prune {
        steps.extend(extra.into_iter().map(Step::Delete));
        0
    } else {
        extra.len()
    };
    Plan { steps, left_alone }
}

/// The fields a PATCH sets, as JSON (`apply`, which says when rather than what, left out).
fn fields_of(patch: &UpdateBot) -> Map<String, Value> {
    let mut fields = match serde_json::to_value(patch) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    fields.remove("apply");
    fields
}

/// The step that makes `remote` match `bot`.
fn compare(bot: &DesiredBot, remote: &BotView) -> Step {
    let d = &bot.decl;
    if let Some(t) = d.template.as_deref().filter(|t| *t != remote.template) {
        return Step::Conflict {
            id: bot.id.clone(),
            reason: format!(
                "the template cannot change in place ({} on the server, {t} in the file): \
                 delete the bot (or use --prune after removing it from the file) and apply again",
                remote.template
            ),
        };
    }
    let declared = d.update();
    let have = comparable(&remote.spec());
    let want = comparable(&desired_spec(bot, remote, &declared));
    let differing: Map<String, Value> = fields_of(&declared)
        .into_iter()
        .filter(|(field, _)| match field.as_str() {
            // Not part of the spec.
            "name" => d.name.as_deref() != Some(remote.name.as_str()),
            spec_field => want.get(spec_field) != have.get(spec_field),
        })
        .collect();
    // A PATCH's own fields always make a PATCH again; were it not so, say so rather than
    // send something else.
    let patch: UpdateBot = match serde_json::from_value(Value::Object(differing)) {
        Ok(patch) => patch,
        Err(e) => {
            return Step::Conflict {
                id: bot.id.clone(),
                reason: format!("this client cannot express the change as a PATCH: {e}"),
            };
        }
    };

    let missing_secrets: Vec<SecretName> = bot
        .secrets
        .iter()
        .filter(|n| !remote.secrets.iter().any(|have| have == n.as_str()))
        .cloned()
        .collect();
    let run = d.start.filter(|want| *want != remote.wants_running());
    let update = Update {
        id: bot.id.clone(),
        patch,
        missing_secrets,
        run,
    };
    if !update.needs_patch() && update.missing_secrets.is_empty() && update.run.is_none() {
        return Step::Unchanged(bot.id.clone());
    }
    Step::Update(Box::new(update))
}

/// A spec as JSON fields, with the forms the server treats alike made equal: no command and
/// `[]` (the image's own), no settings and `{}`.
fn comparable(spec: &BotSpec) -> Map<String, Value> {
    let mut spec = spec.clone();
    spec.command = spec.command.filter(|c| !c.is_empty());
    if is_empty_settings(&spec.settings) {
        spec.settings = Value::Null;
    }
    match serde_json::to_value(&spec) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// What the server would store if `declared` were PATCHed onto `remote`: the server's spec
/// with the declared fields laid over it, then filled in by the bot's template as the server
/// does (the openclaw template adds environment defaults, for one). Comparing this, rather
/// than the raw declaration, keeps a template's defaults from looking like a change on every
/// run.
fn desired_spec(bot: &DesiredBot, remote: &BotView, declared: &UpdateBot) -> BotSpec {
    let mut spec = remote.spec();
    declared.apply_to(&mut spec);
    if let Some(template) = templates::lookup(&remote.template) {
        let mut names: Vec<SecretName> = remote
            .secrets
            .iter()
            .filter_map(|n| SecretName::new(n.clone()).ok())
            .collect();
        names.extend(
            bot.secrets
                .iter()
                .filter(|n| !names.contains(n))
                .cloned()
                .collect::<Vec<_>>(),
        );
        // Problems are the server's to report when the PATCH is sent. The client does not know
        // the server's backend, so it assumes Docker's: only a file declaring `ports = []`
        // for an openclaw bot on Swarm sees the default gateway port as a (harmless) change.
        template.prepare(
            &mut spec,
            &names,
            BindScope::default(),
            &mut FieldErrors::default(),
        );
    }
    spec
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::cli::fleet;

    fn fleet(text: &str) -> Fleet {
        fleet::parse(Path::new("t.toml"), text).unwrap()
    }

    fn remote(id: &str) -> BotView {
        let mut v = fleet::test_view(id);
        v.env = BTreeMap::from([("A".into(), "1".into())]);
        v.secrets = vec!["KEY".into()];
        v
    }

    fn patch(u: &Update) -> Value {
        Value::Object(fields_of(&u.patch))
    }

    #[test]
    fn missing_bots_are_created_and_extra_ones_left_unless_pruned() {
        let f = fleet("[[bot]]\nid = \"new\"\n[[bot]]\nid = \"a\"\n");
        let current = [remote("a"), remote("z-extra")];
        let p = plan(&f, &current, false);
        assert!(matches!(&p.steps[0], Step::Create(b) if b.id.as_str() == "new"));
        assert_eq!(p.steps[1], Step::Unchanged(BotId::new("a").unwrap()));
        assert_eq!((p.steps.len(), p.left_alone), (2, 1));

        let pruned = plan(&f, &current, true);
        assert_eq!(pruned.steps[2], Step::Delete("z-extra".into()));
        assert_eq!(pruned.left_alone, 0);
    }

    #[test]
    fn only_declared_fields_that_differ_are_patched() {
        let f = fleet(
            "[[bot]]\nid = \"a\"\nimage = \"img:2\"\nname = \"a\"\nenv = { A = \"1\" }\n\
             secrets = [\"KEY\", \"NEW\"]\nstart = false\n",
        );
        let Step::Update(u) = &plan(&f, &[remote("a")], false).steps[0] else {
            panic!("expected an update");
        };
        assert_eq!(patch(u), json!({ "image": "img:2" }));
        assert_eq!(u.missing_secrets, vec![SecretName::new("NEW").unwrap()]);
        assert_eq!(u.run, Some(false));
        assert_eq!(u.summary(), "image, secrets +NEW, stop");
    }

    #[test]
    fn equivalent_empties_are_unchanged() {
        let f =
            fleet("[[bot]]\nid = \"a\"\ncommand = []\nsettings = {}\nports = []\nstart = true\n");
        assert!(matches!(
            plan(&f, &[remote("a")], false).steps[0],
            Step::Unchanged(_)
        ));
    }

    #[test]
    fn clearing_env_and_command_is_a_change() {
        let f = fleet("[[bot]]\nid = \"a\"\nenv = {}\ncommand = []\n");
        let mut r = remote("a");
        r.command = Some(vec!["run".into()]);
        let Step::Update(u) = &plan(&f, &[r], false).steps[0] else {
            panic!("expected an update");
        };
        assert_eq!(patch(u), json!({ "env": {}, "command": [] }));
    }

    /// Regression: the openclaw template adds environment defaults, which must not make every
    /// apply recreate an openclaw bot whose file declares only its own variables.
    #[test]
    fn template_defaults_are_not_a_change() {
        let declared = BTreeMap::from([("MY_VAR".to_string(), "1".to_string())]);
        let mut spec = BotSpec {
            env: declared.clone(),
            settings: json!({}),
            ..BotSpec::default()
        };
        let openclaw = templates::lookup("openclaw").unwrap();
        openclaw.prepare(
            &mut spec,
            &[],
            BindScope::default(),
            &mut FieldErrors::default(),
        );
        assert_ne!(spec.env, declared, "the template adds defaults");
        let mut r = remote("a");
        r.template = "openclaw".into();
        r.image.clone_from(&spec.image);
        r.env.clone_from(&spec.env);
        r.ports = spec.ports.iter().cloned().map(Into::into).collect();
        r.limits = spec.limits.clone();
        r.settings = spec.settings.clone();
        r.secrets = Vec::new();
        let f = fleet("[[bot]]\nid = \"a\"\ntemplate = \"openclaw\"\nenv = { MY_VAR = \"1\" }\n");
        assert!(matches!(
            plan(&f, std::slice::from_ref(&r), false).steps[0],
            Step::Unchanged(_)
        ));

        let f = fleet("[[bot]]\nid = \"a\"\nenv = { MY_VAR = \"2\" }\n");
        let Step::Update(u) = &plan(&f, &[r], false).steps[0] else {
            panic!("expected an update");
        };
        assert_eq!(patch(u), json!({ "env": { "MY_VAR": "2" } }));
    }

    #[test]
    fn a_template_change_is_a_conflict() {
        let f = fleet("[[bot]]\nid = \"a\"\ntemplate = \"openclaw\"\n");
        assert!(matches!(
            &plan(&f, &[remote("a")], false).steps[0],
            Step::Conflict { reason, .. } if reason.contains("template")
        ));
    }

    /// The property names of `T`'s derived schema: every field, whatever serde skips.
    fn fields_of_schema<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect()
    }

    /// Walks every field a bot is created with and checks that it can be changed afterwards,
    /// by PATCH and by a fleet file through `apply`: the drift that let `health_check` and
    /// `network` be set once and never again cannot come back unnoticed.
    #[test]
    fn every_setting_of_a_bot_is_editable_after_creation() {
        use crate::api::CreateBot;

        // Fields that say how a bot comes to be, not what it is.
        let create_only = ["id", "template", "start"];
        let create = fields_of_schema::<CreateBot>();
        let update = fields_of_schema::<UpdateBot>();
        for field in fields_of_schema::<BotSpec>() {
            assert!(
                create.contains(&field),
                "the spec's {field} cannot be set at create"
            );
        }
        let example = serde_json::to_value(<CreateBot as utoipa::PartialSchema>::schema()).unwrap()
            ["examples"][0]
            .clone();
        for field in create.iter().filter(|f| !create_only.contains(&f.as_str())) {
            assert!(update.contains(field), "PATCH cannot change {field}");
            let mut value = example[field].clone();
            assert!(!value.is_null(), "the create example does not show {field}");
            if is_empty_settings(&value) {
                value = json!({ "mode": "fast" });
            }

            // The PATCH body takes it, and lays it over the spec.
            let patch: UpdateBot = serde_json::from_value(json!({ field.as_str(): value }))
                .unwrap_or_else(|e| panic!("PATCH refuses {field}: {e}"));
            let mut spec = BotSpec::default();
            patch.apply_to(&mut spec);
            let is_spec_field = comparable(&BotSpec::default()).contains_key(field);
            if is_spec_field {
                assert_ne!(
                    comparable(&spec).get(field),
                    comparable(&BotSpec::default()).get(field),
                    "PATCH does not change {field}"
                );
            }

            // A fleet file declares it (secrets by name), and `apply` patches it.
            let declared = if field == "secrets" {
                let names: Vec<&String> = value.as_object().unwrap().keys().collect();
                json!(names)
            } else {
                value.clone()
            };
            let mut table = toml::Table::new();
            table.insert("id".into(), toml::Value::String("a".into()));
            table.insert(
                field.clone(),
                toml::Value::try_from(&declared).expect("TOML can hold it"),
            );
            let text = toml::to_string(&toml::Table::from_iter([(
                "bot".to_string(),
                toml::Value::Array(vec![toml::Value::Table(table)]),
            )]))
            .unwrap();
            let fleet = super::super::fleet::parse(Path::new("f.toml"), &text)
                .unwrap_or_else(|e| panic!("a fleet file cannot declare {field}: {e}"));
            let step = plan(&fleet, &[remote("a")], false).steps.remove(0);
            let Step::Update(u) = step else {
                panic!("declaring {field} plans no update: {step:?}");
            };
            if field == "secrets" {
                assert!(!u.missing_secrets.is_empty(), "apply does not set secrets");
            } else {
                assert_eq!(
                    u.patched_fields(),
                    std::slice::from_ref(field),
                    "apply does not patch {field}"
                );
                // What apply sends is a PATCH the server takes.
                let sent = serde_json::to_value(&u.patch).unwrap();
                serde_json::from_value::<UpdateBot>(sent)
                    .unwrap_or_else(|e| panic!("the server refuses apply's {field}: {e}"));
            }
        }
    }

    /// Regression: a changed health check planned as `~ update` sent a PATCH the server
    /// refused (`unknown field health_check`); fleet files refused `network`.
    #[test]
    fn a_changed_health_check_or_network_is_planned_as_a_patch_the_server_takes() {
        let f = fleet(
            "[[bot]]\nid = \"a\"\nnetwork = \"none\"\n\
             [bot.health_check]\nport = 8080\npath = \"/ready\"\n",
        );
        let mut r = remote("a");
        r.health_check = serde_json::from_value(json!({ "port": 8080 })).unwrap();
        let Step::Update(u) = &plan(&f, &[r.clone()], false).steps[0] else {
            panic!("expected an update");
        };
        assert_eq!(u.patched_fields(), ["health_check", "network"]);
        let sent = serde_json::to_value(&u.patch).unwrap();
        let received: UpdateBot = serde_json::from_value(sent).expect("the server takes it");
        let mut spec = r.spec();
        received.apply_to(&mut spec);
        assert_eq!(spec.network.as_deref(), Some("none"));
        assert_eq!(spec.health_check.unwrap().path, "/ready");
    }
}
