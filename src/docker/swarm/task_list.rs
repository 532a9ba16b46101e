//! The one way the Swarm backend lists tasks: a single call, with the filters Docker applies
//! on its side, the timeout and the tolerant decoding every call of this backend has.

use std::collections::HashMap;

use bollard::models::Task;
use bollard::query_parameters::ListTasksOptionsBuilder;

use super::super::error::{ContainerError, Op};
use super::super::{DockerService, lenient};

impl DockerService {
    /// The swarm's tasks matching `filters` (empty: every task), for `bot_id` (empty for a
    /// fleet-wide list) in errors.
    pub(in crate::docker) async fn swarm_tasks(
        &self,
        bot_id: &str,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<Task>, ContainerError> {
        let options = ListTasksOptionsBuilder::new().filters(filters).build();
        self.call(
            Op::List,
            bot_id,
            self.call_timeout,
            lenient::tolerant(self.docker.list_tasks(Some(options))),
        )
        .await
    }
}
