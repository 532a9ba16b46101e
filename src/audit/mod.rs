//! The audit log: every change to botmaker's state, who made it, to which bot, when, and how
//! it ended, kept in the registry for a retention period ([`DEFAULT_RETENTION_DAYS`]).
//!
//! Changes reach it from two places, each the one place its kind passes through:
//!
//! - every authenticated API request that changes something, recorded by the API's audit
//!   layer (`crate::http`) after the answer, with the caller already known and the action
//!   named by [`action_of`] from the matched route (the dashboard changes things through the
//!   API, so it is recorded there too);
//! - every login attempt, recorded by [`crate::access::Auth::login`] with the client's
//!   address, whichever front end (API or dashboard form) it came through.
//!
//! What is recorded is the route's action, the bot and a name (a secret's, a provider's, a
//! token's), never a request body: a secret's value cannot reach the log.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::store::{AuditFilter, AuditRow, NewAuditRow, Store};

/// How long entries are kept by default (`serve --audit-retention-days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// How often entries past the retention are deleted.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Most entries one read returns.
pub const MAX_PAGE: u32 = 1000;
/// Entries one read returns when the caller does not say.
pub const DEFAULT_PAGE: u32 = 100;
/// The name a dashboard session is recorded under: botmaker has one administrator.
pub const SESSION_ACTOR: &str = "admin";

/// Who made a change. (The front ends turn their caller into one; this module knows nothing
/// of how callers are authenticated.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A logged-in session: the administrator.
    Session,
    /// An API token, by id (recorded under its name).
    Token(String),
    /// Nobody yet: a login attempt.
    Anonymous,
}

/// One change, as the places that see it describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Who.
    pub actor: Actor,
    /// What ([`action_of`]'s names, or `login`).
    pub action: String,
    /// Which bot.
    pub bot_id: Option<String>,
    /// What else: a secret's, provider's or token's name or id.
    pub target: Option<String>,
    /// `None` when it succeeded, else the error code.
    pub error: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The client's address (logins).
    pub client: Option<String>,
}

/// Writes and reads the audit log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    store: Store,
}

impl AuditLog {
    /// The log kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Records `change`. A failed write is logged, not returned: the change itself happened
    /// (or failed) already, and its answer must not say otherwise.
    pub async fn record(&self, change: Change) {
        let (actor_kind, actor) = match change.actor {
            Actor::Session => ("session", SESSION_ACTOR.to_string()),
            Actor::Token(id) => ("token", id),
            Actor::Anonymous => ("anonymous", "-".to_string()),
        };
        let row = NewAuditRow {
            at: Utc::now(),
            actor_kind,
            actor,
            action: change.action,
            bot_id: change.bot_id,
            target: change.target,
            outcome: change.error.unwrap_or_else(|| "ok".to_string()),
            status: change.status,
            client: change.client,
        };
        if let Err(e) = self.store.append_audit(row).await {
            tracing::warn!(error = %e, "could not write the audit log");
        }
    }

    /// Entries matching `filter`, newest first.
    pub async fn entries(
        &self,
        filter: AuditFilter,
    ) -> Result<Vec<AuditRow>, crate::store::StoreError> {
        self.store.audit_entries(filter).await
    }

    /// Deletes entries older than `retention_days` every [`PRUNE_INTERVAL`] (and once at
    /// start) until `shutdown`.
    pub async fn run_pruning(self, retention_days: u32, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {
                    let cutoff = Utc::now() - chrono::Duration::days(i64::from(retention_days));
                    match self.store.prune_audit(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, retention_days, "pruned the audit log"),
                        Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
                    }
                }
            }
        }
    }
}

/// What a route does, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Its name in the log.
    pub name: &'static str,
    /// Where the bot comes from, if the action is on one.
    pub bot: BotFrom,
    /// The path parameter recorded as the target, if any.
    pub target_param: Option<&'static str>,
    /// The answer's JSON field that names what was made (a new bot's or token's), read from
    /// a successful answer when the path does not name it.
    pub answer_field: Option<AnswerField>,
}

/// Where the bot an action is on is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotFrom {
    /// On no bot.
    None,
    /// The path parameter of this name.
    Param(&'static str),
    /// This bot (a route whose path is a bot's own, `/api/bots/import`).
    Literal(&'static str),
}

/// Where a field read from the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerField {
    /// The answer's `id` is the bot.
    BotId,
    /// The answer's field of this name is the target.
    Target(&'static str),
}

const fn act(name: &'static str) -> Action {
    Action {
        name,
        bot: BotFrom::None,
        target_param: None,
        answer_field: None,
    }
}

const fn on_bot(name: &'static str) -> Action {
    Action {
        bot: BotFrom::Param("id"),
        ..act(name)
    }
}

/// The action of a request to `route` (the matched route template) with `method`, if it is
/// recorded. Every route that changes state is; a read is only when it hands out data in bulk
/// (a backup) or opens a terminal. A changing route this table does not know (a newer
/// module's) is recorded as `<method> <route>`, so nothing that changes state goes unlogged.
pub fn action_of(method: &str, route: &str) -> Option<Action> {
    let a = match (method, route) {
        ("POST", "/api/login") => return None, // recorded by Auth::login, with the address
        ("POST", "/api/logout") => act("logout"),
        ("POST", "/api/tokens") => Action {
            answer_field: Some(AnswerField::Target("name")),
            ..act("token_create")
        },
        ("DELETE", "/api/tokens/{id}") => Action {
            target_param: Some("id"),
            ..act("token_revoke")
        },
        ("POST", "/api/bots") => Action {
            answer_field: Some(AnswerField::BotId),
            ..act("create")
        },
        ("POST", "/api/bots/import") => Action {
            answer_field: Some(AnswerField::BotId),
            ..act("import")
        },
        // A bot named `import` has its own routes (the import route holds the path).
        ("PATCH", "/api/bots/import") | ("DELETE", "/api/bots/import") => {
            return Some(Action {
                name: if method == "PATCH" {
                    "update"
                } else {
                    "delete"
                },
                bot: BotFrom::Literal("import"),
                ..act("")
            });
        }
        ("PATCH", "/api/bots/{id}") => on_bot("update"),
        ("DELETE", "/api/bots/{id}") => on_bot("delete"),
        ("POST", "/api/bots/{id}/start") => on_bot("start"),
        ("POST", "/api/bots/{id}/stop") => on_bot("stop"),
        ("POST", "/api/bots/{id}/restart") => on_bot("restart"),
        ("POST", "/api/bots/{id}/apply") => on_bot("apply"),
        ("POST", "/api/bots/{id}/upgrade") => on_bot("upgrade"),
        ("PUT", "/api/bots/{id}/secrets/{name}") => Action {
            target_param: Some("name"),
            ..on_bot("secret_set")
        },
        ("DELETE", "/api/bots/{id}/secrets/{name}") => Action {
            target_param: Some("name"),
            ..on_bot("secret_delete")
        },
        ("POST", "/api/bots/{id}/exec") => on_bot("exec"),
        ("GET", "/api/bots/{id}/exec/ws") => on_bot("exec_terminal"),
        ("GET", "/api/bots/{id}/backup") => on_bot("backup"),
        ("GET", "/api/admin/backup") => act("backup"),
        ("POST", "/api/admin/cleanup") => act("cleanup"),
        ("POST", "/api/providers") => Action {
            answer_field: Some(AnswerField::Target("name")),
            ..act("provider_set")
        },
        ("DELETE", "/api/providers/{name}") => Action {
            target_param: Some("name"),
            ..act("provider_delete")
        },
        ("POST", "/api/bots/{id}/llm-keys/rotate") => on_bot("llm_keys_rotate"),
        ("DELETE", "/api/bots/{id}/llm-keys") => on_bot("llm_keys_revoke"),
        ("POST", "/api/notifications") => Action {
            answer_field: Some(AnswerField::Target("name")),
            ..act("notification_add")
        },
        ("PATCH", "/api/notifications/{id}") => Action {
            target_param: Some("id"),
            ..act("notification_change")
        },
        ("DELETE", "/api/notifications/{id}") => Action {
            target_param: Some("id"),
            ..act("notification_remove")
        },
        ("POST", "/api/notifications/{id}/test") => Action {
            target_param: Some("id"),
            ..act("notification_test")
        },
        ("GET" | "HEAD" | "OPTIONS", _) => return None,
        _ => act(""),
    };
    Some(a)
}

/// The name a route [`action_of`] does not know is recorded under.
pub fn generic_action(method: &str, route: &str) -> String {
    format!("{} {route}", method.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_named_reads_are_not_recorded_and_unknown_changes_still_are() {
        let start = action_of("POST", "/api/bots/{id}/start").unwrap();
        assert_eq!((start.name, start.bot), ("start", BotFrom::Param("id")));
        let secret = action_of("PUT", "/api/bots/{id}/secrets/{name}").unwrap();
        assert_eq!(secret.target_param, Some("name"));
        assert_eq!(action_of("GET", "/api/bots"), None);
        assert_eq!(
            action_of("POST", "/api/login"),
            None,
            "Auth::login records it"
        );
        let unknown = action_of("POST", "/api/some-new-thing").unwrap();
        assert_eq!(unknown.name, "", "named by generic_action");
        assert_eq!(
            generic_action("POST", "/api/some-new-thing"),
            "post /api/some-new-thing"
        );
        let named_import = action_of("DELETE", "/api/bots/import").unwrap();
        assert_eq!(
            (named_import.name, named_import.bot),
            ("delete", BotFrom::Literal("import"))
        );
    }
}
