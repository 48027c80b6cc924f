//! Who is joined to each project, across instances.
//!
//! Each instance knows its own sockets. It publishes its local user set of a
//! project on the project's bus channel whenever that set may have changed,
//! and keeps the sets other instances published. The project's presence is
//! the union. When the union changes, each instance tells its own sockets,
//! as a volatile message so presence never queues in front of task events.
//!
//! An instance that dies cannot say its users left. Every instance says it
//! is alive every [`HEARTBEAT`], one message on one channel, and the sets of
//! an instance not heard from within [`EXPIRY`] are forgotten. Every
//! [`REFRESH`] (and when Redis comes back) each instance republishes all its
//! sets, which heals an update the bus lost. Republishing every set at every
//! heartbeat would cost a message per project per instance every few
//! seconds — at 10,000 projects per instance, more than the events.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use protocol::{Presence, PresenceUser};
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use uuid::Uuid;

use super::handlers::SessionUser;
use super::{stream, Adapter, Io};

/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often an instance republishes every local set.
pub const REFRESH: Duration = Duration::from_secs(60);
/// A remote instance's sets are forgotten when it has not been heard from
/// for this long.
pub const EXPIRY: Duration = Duration::from_secs(30);

type Users = BTreeSet<PresenceUser>;
/// What each other instance last said.
type RemoteSets = HashMap<Uuid, Users>;

#[derive(Default)]
pub struct PresenceBook {
    /// project → instance → users
    remote: Mutex<HashMap<Uuid, RemoteSets>>,
    /// instance → when it was last heard from
    heard: Mutex<HashMap<Uuid, Instant>>,
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
    /// Records that `instance` is alive.
    pub fn heard_from(&self, instance: Uuid) {
        if let Ok(mut heard) = self.heard.lock() {
            heard.insert(instance, Instant::now());
        }
    }

    pub fn remember_remote(&self, project: Uuid, instance: Uuid, users: Vec<PresenceUser>) {
        self.heard_from(instance);
        if let Ok(mut remote) = self.remote.lock() {
            let instances = remote.entry(project).or_default();
            if users.is_empty() {
                instances.remove(&instance);
            } else {
                instances.insert(instance, users.into_iter().collect());
            }
            if instances.is_empty() {
                remote.remove(&project);
            }
        }
    }

    /// The union of `local` and the remote sets.
    pub fn union(&self, project: Uuid, local: &Users) -> Users {
        let mut all = local.clone();
        if let Ok(remote) = self.remote.lock() {
            if let Some(instances) = remote.get(&project) {
                for users in instances.values() {
                    all.extend(users.iter().cloned());
                }
            }
        }
        all
    }

    /// Forgets every set of the instances not heard from within [`EXPIRY`];
    /// returns the projects whose presence that changed.
    pub fn forget_silent(&self) -> Vec<Uuid> {
        let silent: Vec<Uuid> = match self.heard.lock() {
            Ok(mut heard) => {
                let silent = heard
                    .iter()
                    .filter(|(_, at)| at.elapsed() >= EXPIRY)
                    .map(|(instance, _)| *instance)
                    .collect();
                heard.retain(|_, at| at.elapsed() < EXPIRY);
                silent
            }
            Err(_) => return Vec::new(),
        };
        if silent.is_empty() {
            return Vec::new();
        }
        let Ok(mut remote) = self.remote.lock() else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        remote.retain(|project, instances| {
            let before = instances.len();
            instances.retain(|instance, _| !silent.contains(instance));
            if instances.len() != before {
                changed.push(*project);
            }
            !instances.is_empty()
        });
        changed
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> PresenceUser {
        PresenceUser {
            id: format!("id-{name}"),
            name: name.to_owned(),
        }
    }

    #[test]
    fn the_sets_of_a_silent_instance_are_forgotten_and_a_live_one_kept() {
        let book = PresenceBook::default();
        let (project, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (silent, live) = (Uuid::new_v4(), Uuid::new_v4());
        book.remember_remote(project, silent, vec![user("Sam")]);
        book.remember_remote(other, silent, vec![user("Sam")]);
        book.remember_remote(project, live, vec![user("Liv")]);
        let local: Users = [user("Me")].into();
        assert_eq!(book.union(project, &local).len(), 3);

        // Nothing is forgotten while everyone is heard from.
        assert!(book.forget_silent().is_empty());

        let long_ago = Instant::now() - EXPIRY - Duration::from_secs(1);
        book.heard.lock().unwrap().insert(silent, long_ago);
        let mut changed = book.forget_silent();
        changed.sort_unstable();
        let mut expected = vec![project, other];
        expected.sort_unstable();
        assert_eq!(changed, expected);
        assert_eq!(
            book.union(project, &local),
            [user("Me"), user("Liv")].into()
        );
        assert_eq!(book.union(other, &Users::new()), Users::new());

        // Heard from again, an instance counts again.
        book.remember_remote(other, silent, vec![user("Sam")]);
        assert_eq!(book.union(other, &Users::new()), [user("Sam")].into());
    }
}
