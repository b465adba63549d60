//! Leadership: which kongress replica may write to the API server and push to Kong.

use std::sync::Arc;

use tokio::sync::watch;

/// Whether this process is the leader now. Cheap to clone; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Leadership {
    state: Arc<watch::Sender<bool>>,
}

impl Leadership {
    /// A process that always leads: one replica, tests and offline tools.
    pub fn always() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(true)),
        }
    }

    /// A process that starts as a standby until an election makes it leader.
    pub fn standby() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(false)),
        }
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Changes of leadership, for tasks that start or stop with it.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.state.subscribe()
    }

    /// Sets the state; only the election loop calls this.
    pub fn set_leader(&self, leader: bool) {
        self.state.send_if_modified(|current| {
            let changed = *current != leader;
            *current = leader;
            changed
        });
    }
}
