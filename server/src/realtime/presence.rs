//! Who is joined to each project, across instances.
//!
//! Each instance knows its own sockets. It publishes its local user set of a
//! project on the bus whenever that set may have changed, and again every
//! [`HEARTBEAT`] for all its projects; it keeps the sets other instances
//! published and forgets those not refreshed within [`EXPIRY`] (an instance
//! that died). The project's presence is the union. When the union changes,
//! each instance tells its own sockets, as a volatile message so presence
//! never queues in front of task events.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use protocol::{Presence, PresenceUser};
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use uuid::Uuid;

use super::handlers::SessionUser;
use super::{stream, Adapter, Io};

/// How often an instance republishes its local presence.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A remote instance's set is forgotten when not refreshed for this long.
pub const EXPIRY: Duration = Duration::from_secs(30);

type Users = BTreeSet<PresenceUser>;
/// What each other instance last said, and when.
type RemoteSets = HashMap<Uuid, (Users, Instant)>;

#[derive(Default)]
pub struct PresenceBook {
    /// project → instance → (users, when heard)
    remote: Mutex<HashMap<Uuid, RemoteSets>>,
    /// project → the union last announced to local sockets
    announced: Mutex<HashMap<Uuid, Users>>,
}

/// The users of this instance's sockets in `project`, leaving out `departing`
/// (a socket whose disconnect is being handled and is still in its rooms).
pub fn local_users(io: &Io, project: Uuid, departing: Option<Sid>) -> Users {
    io.local()
        .to(stream::room(project))
        .sockets()
        .into_iter()
        .filter(|socket| Some(socket.id) != departing)
        .filter_map(|socket| socket.extensions.get::<SessionUser>())
        .map(|user| PresenceUser {
            id: user.id.to_string(),
            name: user.name,
        })
        .collect()
}

impl PresenceBook {
    pub fn remember_remote(&self, project: Uuid, instance: Uuid, users: Vec<PresenceUser>) {
        if let Ok(mut remote) = self.remote.lock() {
            let instances = remote.entry(project).or_default();
            if users.is_empty() {
                instances.remove(&instance);
            } else {
                instances.insert(instance, (users.into_iter().collect(), Instant::now()));
            }
            if instances.is_empty() {
                remote.remove(&project);
            }
        }
    }

    /// The union of `local` and the live remote sets.
    pub fn union(&self, project: Uuid, local: &Users) -> Users {
        let mut all = local.clone();
        if let Ok(mut remote) = self.remote.lock() {
            if let Some(instances) = remote.get_mut(&project) {
                instances.retain(|_, (_, heard)| heard.elapsed() < EXPIRY);
                for (users, _) in instances.values() {
                    all.extend(users.iter().cloned());
                }
            }
        }
        all
    }

    /// Records `users` as the project's presence; true if it differs from
    /// what was last announced.
    pub fn changed(&self, project: Uuid, users: &Users) -> bool {
        let Ok(mut announced) = self.announced.lock() else {
            return false;
        };
        if users.is_empty() {
            return announced.remove(&project).is_some();
        }
        if announced.get(&project) == Some(users) {
            return false;
        }
        announced.insert(project, users.clone());
        true
    }

    /// Projects that have remote presence (so heartbeats can expire them).
    pub fn remote_projects(&self) -> Vec<Uuid> {
        self.remote
            .lock()
            .map(|remote| remote.keys().copied().collect())
            .unwrap_or_default()
    }
}

pub fn message(project: Uuid, users: &Users) -> Presence {
    Presence {
        project_id: project.to_string(),
        users: users.iter().cloned().collect(),
    }
}

/// Tells every local socket in the project the current presence.
pub async fn announce(io: &Io, project: Uuid, users: &Users) {
    let _ = io
        .local()
        .to(stream::room(project))
        .volatile()
        .emit("presence", &message(project, users))
        .await;
}

/// Tells one socket (a joiner) the current presence.
pub fn tell(socket: &SocketRef<Adapter>, project: Uuid, users: &Users) {
    let _ = socket.volatile().emit("presence", &message(project, users));
}
