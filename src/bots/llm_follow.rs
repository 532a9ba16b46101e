//! Keeping the LLM proxy's view of bots current, and telling the fleet's event stream about
//! budgets: the one place the proxy (`crate::llm`, which knows nothing of bots beyond their
//! ids) meets the bot domain's events.
//!
//! - A bot created or updated may have new limits: they are read again on its next request.
//! - A bot deleted took its keys with it (the registry cascades): the index forgets them now.
//! - Missed events (the channel lagged) resynchronize everything.
//! - [`LlmEvent::BudgetExceeded`] is also published on the fleet's stream as a
//!   `budget_exceeded` event of the bot, so `GET /api/events` and the dashboard see it.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::{BotEvent, BotEventKind, Fleet};
use crate::BotId;
use crate::llm::{LlmEvent, LlmService};

/// Runs until `stop`.
pub async fn follow_llm(llm: LlmService, fleet: Arc<Fleet>, mut stop: watch::Receiver<bool>) {
    let mut bots = fleet.subscribe();
    let mut budgets = llm.subscribe();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            event = bots.recv() => match event {
                Ok(BotEvent { id, kind, .. }) => match kind {
                    BotEventKind::Created | BotEventKind::Updated => llm.bot_changed(&id),
                    BotEventKind::Deleted => llm.bot_deleted(&id),
                    BotEventKind::State | BotEventKind::BudgetExceeded => {}
                },
                Err(broadcast::error::RecvError::Lagged(_)) => llm.resync().await,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            event = budgets.recv() => match event {
                Ok(LlmEvent::BudgetExceeded { bot, .. }) => publish(&fleet, &bot),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

fn publish(fleet: &Fleet, bot: &BotId) {
    fleet.publish(bot, BotEventKind::BudgetExceeded, None);
}
