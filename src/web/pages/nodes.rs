//! `GET /nodes`: the nodes bots run on (the swarm's, or the one Docker Engine), each with the
//! bots it runs, so an operator sees at a glance which bots a node down or drained takes along.

use axum::response::Response;
use maud::html;

use super::page;
use crate::web::assets::Script;
use crate::web::layout::Nav;
use crate::web::session::BrowserSession;

/// `GET /nodes`: one row per node; its script fills them from `GET /api/nodes` and
/// `GET /api/bots` and refreshes them on every bot event.
pub async fn nodes(s: BrowserSession) -> Response {
    let body = html! {
        h1 { "Nodes" }
        p.help {
            "Where the bots run: the swarm's nodes with " code { "serve --backend swarm" }
            ", else the one Docker Engine. A bot whose node is not ready shows as "
            code { "missing" } "; Swarm runs it elsewhere when its placement allows."
        }
        div.table-wrap {
            table #nodes {
                caption.sr-only { "Nodes" }
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Role" }
                        th scope="col" { "State" }
                        th scope="col" { "Availability" }
                        th scope="col" { "Memory" }
                        th scope="col" { "Bots" }
                    }
                }
                tbody #node-rows {}
            }
        }
        p #nodes-empty .empty hidden { "No nodes." }
        p #nodes-error .error hidden {}
    };
    page("Nodes", Script::Nodes, Nav::Nodes, &s, body)
}
