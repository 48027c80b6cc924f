//! The projects this browser opened, kept on the device (IndexedDB), so that
//! a reload without network shows the board as it was last seen, and the
//! edits made while offline, sent when the connection is back.
//!
//! Design: the copy is a board at a seq. It is written only when it is
//! whole (every REST page read) and holds no unconfirmed edit, so restoring
//! it and joining with `since` = its seq gives exactly the server's state:
//! the server replays what came after, or asks for a resync when its history
//! no longer reaches that far. Edits to existing tasks made offline are kept
//! in an outbox beside it (on the device too, so a reload keeps them), shown
//! on the board, and sent in order once the live link is back, each with
//! `If-Match` on the version the user edited: a task someone else changed
//! meanwhile refuses the edit, which rolls back with the usual message.
//! Creating, deleting and bulk changes need the server (new ids, a change
//! set judged whole) and say so when it cannot be reached.
//!
//! Records are keyed by user and project, and sign-out forgets them all.

use std::cell::RefCell;

use js_sys::{Array, Function, Promise};
use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::{Member, Project, Task, TaskPatch};
use serde::{Deserialize, Serialize};
use taskmaster_board::merge;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbKeyRange, IdbRequest, IdbTransaction, IdbTransactionMode};

use crate::api;
use crate::notices::Notices;
use crate::store::{LoadState, ProjectStore};

const DATABASE: &str = "taskmaster";
/// A board's head (`user/project`) and its tasks (`user/project#00000`…).
const BOARDS: &str = "boards";
/// Edits not yet sent, one list per `user/project`.
const OUTBOX: &str = "outbox";
/// Tasks per record: each is turned into JSON (or back) in a task of its
/// own, so a 10,000-task board never holds the page for long.
const TASKS_PER_RECORD: usize = 500;
/// How long after a change the copy is written (at most once per period).
const SAVE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Serialize, Deserialize)]
struct BoardHead {
    seq: i64,
    project: Option<Project>,
    members: Vec<Member>,
    records: usize,
}

/// An edit of an existing task that could not reach the server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueuedEdit {
    pub task_id: i64,
    /// The version the user edited: the `If-Match` it is sent with.
    pub base: i64,
    pub patch: TaskPatch,
    /// The task before the edit, to put back if the server refuses it.
    pub before: Task,
}

thread_local! {
    static DB: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

/// Waits for the browser to call one of the two functions `install` hands
/// to its callbacks: the first settles with success, the second with
/// failure. Promise functions themselves are the callbacks: nothing to free.
async fn settled(install: impl FnOnce(&Function, &Function)) -> Result<JsValue, JsValue> {
    let mut functions = None;
    let promise = Promise::new(&mut |resolve, reject| functions = Some((resolve, reject)));
    let (resolve, reject) = functions.expect("a promise calls its executor at once");
    install(&resolve, &reject);
    JsFuture::from(promise).await
}

async fn request_result(request: &IdbRequest) -> Result<JsValue, JsValue> {
    settled(|done, failed| {
        request.set_onsuccess(Some(done));
        request.set_onerror(Some(failed));
    })
    .await?;
    request.result()
}

async fn committed(transaction: &IdbTransaction) -> Result<(), JsValue> {
    settled(|done, failed| {
        transaction.set_oncomplete(Some(done));
        transaction.set_onerror(Some(failed));
        transaction.set_onabort(Some(failed));
    })
    .await
    .map(drop)
}

async fn database() -> Result<IdbDatabase, JsValue> {
    if let Some(db) = DB.with_borrow(Clone::clone) {
        return Ok(db);
    }
    let factory = web_sys::window()
        .ok_or("no window")?
        .indexed_db()?
        .ok_or("no IndexedDB")?;
    // At whatever version it is; created with our stores if it is new.
    let mut db = open_database(&factory, None).await?;
    if [BOARDS, OUTBOX]
        .iter()
        .any(|store| !db.object_store_names().contains(store))
    {
        // Someone made the database without our stores: a new version
        // adds them (only an upgrade may).
        let next = db.version() as u32 + 1;
        db.close();
        db = open_database(&factory, Some(next)).await?;
    }
    DB.with_borrow_mut(|slot| *slot = Some(db.clone()));
    Ok(db)
}

async fn open_database(
    factory: &web_sys::IdbFactory,
    version: Option<u32>,
) -> Result<IdbDatabase, JsValue> {
    let request = match version {
        Some(version) => factory.open_with_u32(DATABASE, version)?,
        None => factory.open(DATABASE)?,
    };
    let opening = request.clone();
    let upgrade = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        let Ok(db) = opening.result() else { return };
        let db: IdbDatabase = db.unchecked_into();
        for store in [BOARDS, OUTBOX] {
            if !db.object_store_names().contains(store) {
                let _ = db.create_object_store(store);
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let db = request_result(&request).await;
    request.set_onupgradeneeded(None);
    Ok(db?.unchecked_into())
}

/// Lets the page handle input and paint between two slices of work.
pub async fn yield_to_page() {
    let _ = settled(|done, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback(done);
        }
    })
    .await;
}

fn record_key(head: &str, index: usize) -> String {
    format!("{head}#{index:05}")
}

/// `head`'s task records from number `from` on.
fn records_from(head: &str, from: usize) -> Result<JsValue, JsValue> {
    IdbKeyRange::bound(
        &JsValue::from_str(&record_key(head, from)),
        &JsValue::from_str(&format!("{head}#99999")),
    )
    .map(JsValue::from)
}

/// Records are the user's own: `user/project`.
pub fn device_key(project_id: &str) -> Option<String> {
    let user = use_context::<crate::session::Session>()?
        .user
        .get_untracked()?
        .id;
    Some(format!("{user}/{project_id}"))
}

fn key_of(store: &ProjectStore) -> Option<String> {
    store.device_key.try_get_value().flatten()
}

/// Puts what the device keeps of this project back on the board: the copy
/// (the board shows at once, and the live link joins with its seq) and the
/// edits still to send. Whether anything is kept is known without the
/// database (a `localStorage` mark), so a first visit neither waits for
/// IndexedDB nor fetches this module's code before going live.
pub async fn restore_from_device(store: ProjectStore) {
    if key_of(&store).is_some_and(|key| is_kept(&key)) {
        restore_kept(store).await;
    }
}

/// The code that reads and writes the device's copy is a module of its own
/// (`#[lazy]`), fetched when a copy exists or is first written: the first
/// screen does not carry it.
#[lazy]
async fn restore_kept(store: ProjectStore) {
    restore(store).await;
    restore_outbox(store).await;
}

#[lazy]
async fn save_board(store: ProjectStore) {
    if save(store).await.is_ok() {
        mark_kept(&store);
    }
}

#[lazy]
async fn save_outbox(store: ProjectStore) {
    if write_outbox(store).await.is_ok() {
        mark_kept(&store);
    }
}

#[lazy]
async fn clear_device() {
    clear().await;
}

const KEPT_MARK: &str = "taskmaster.kept:";

fn is_kept(key: &str) -> bool {
    crate::session::local_storage()
        .and_then(|storage| {
            storage
                .get_item(&format!("{KEPT_MARK}{key}"))
                .ok()
                .flatten()
        })
        .is_some()
}

fn mark_kept(store: &ProjectStore) {
    if let (Some(storage), Some(key)) = (crate::session::local_storage(), key_of(store)) {
        let _ = storage.set_item(&format!("{KEPT_MARK}{key}"), "1");
    }
}

/// The board kept on the device, if there is one; tasks arrive record by
/// record, the page staying responsive.
async fn restore(store: ProjectStore) {
    let Some(key) = key_of(&store) else {
        return;
    };
    // Nothing kept (or unreadable): the board loads from the server.
    let Ok(Some((head, records))) = read_board(&key).await else {
        return;
    };
    if store.project.with_untracked(Option::is_none) {
        store.project.set(head.project);
    }
    store.members.set(head.members);
    for (index, record) in records.iter().enumerate() {
        let Some(json) = record.as_string() else {
            continue;
        };
        match serde_json::from_str::<Vec<Task>>(&json) {
            Ok(tasks) => store.upsert(tasks),
            Err(_) => {
                // Written by an incompatible version: start afresh.
                store.reset();
                return;
            }
        }
        if index == 0 {
            crate::pages::board::mark_board_ready();
        }
        yield_to_page().await;
    }
    store.last_seq.set_value(Some(head.seq));
    store.saved_seq.set_value(Some(head.seq));
    store.load.set(LoadState::Ready);
}

async fn read_board(key: &str) -> Result<Option<(BoardHead, Array)>, JsValue> {
    let db = database().await?;
    let transaction = db.transaction_with_str(BOARDS)?;
    let boards = transaction.object_store(BOARDS)?;
    let head = request_result(&boards.get(&JsValue::from_str(key))?).await?;
    let Some(head) = head.as_string() else {
        return Ok(None);
    };
    let Ok(head) = serde_json::from_str::<BoardHead>(&head) else {
        return Ok(None);
    };
    let records: Array = request_result(&boards.get_all_with_key(&records_from(key, 0)?)?)
        .await?
        .unchecked_into();
    if records.length() as usize != head.records {
        return Ok(None);
    }
    Ok(Some((head, records)))
}

/// Writes the board to the device a moment after it changed, when it is
/// whole and every edit on it is confirmed (see the module's design).
pub fn keep_saved(store: ProjectStore) {
    let scheduled = StoredValue::new(false);
    Effect::new(move |_| {
        store.tasks.track();
        if store.load.get() != LoadState::Ready || scheduled.get_value() {
            return;
        }
        scheduled.set_value(true);
        let write_now = move || {
            scheduled.try_set_value(false);
            spawn_local(save_board(store));
        };
        set_timeout(write_now, SAVE_AFTER);
    });
}

async fn save(store: ProjectStore) -> Result<(), JsValue> {
    let Some(key) = key_of(&store) else {
        return Ok(());
    };
    // A disposed store (the user left the project) has nothing to save.
    let Some(seq) = store.last_seq.try_get_value().flatten() else {
        return Ok(());
    };
    if store.load.get_untracked() != LoadState::Ready
        || store.unconfirmed.get_value() > 0
        || store.saved_seq.get_value() == Some(seq)
    {
        return Ok(());
    }
    // Taken in one go, so that tasks and seq agree; written slice by slice.
    let mut tasks: Vec<Task> = store
        .tasks
        .with_untracked(|tasks| tasks.values().cloned().collect());
    tasks.sort_unstable_by_key(|task| task.id);
    let mut records = Vec::with_capacity(tasks.len().div_ceil(TASKS_PER_RECORD));
    for slice in tasks.chunks(TASKS_PER_RECORD) {
        records.push(serde_json::to_string(slice).map_err(|error| error.to_string())?);
        yield_to_page().await;
    }
    let head = BoardHead {
        seq,
        project: store.project.get_untracked(),
        members: store.members.get_untracked(),
        records: records.len(),
    };
    let head = serde_json::to_string(&head).map_err(|error| error.to_string())?;

    let db = database().await?;
    let transaction = db.transaction_with_str_and_mode(BOARDS, IdbTransactionMode::Readwrite)?;
    let boards = transaction.object_store(BOARDS)?;
    boards.put_with_key(&JsValue::from_str(&head), &JsValue::from_str(&key))?;
    for (index, record) in records.iter().enumerate() {
        boards.put_with_key(
            &JsValue::from_str(record),
            &JsValue::from_str(&record_key(&key, index)),
        )?;
    }
    boards.delete(&records_from(&key, records.len())?)?;
    committed(&transaction).await?;
    store.saved_seq.try_set_value(Some(seq));
    Ok(())
}

/// Puts the edits left from an earlier visit back on the board, to be sent
/// when the link is live.
async fn restore_outbox(store: ProjectStore) {
    let Some(key) = key_of(&store) else { return };
    let Ok(value) = read_outbox(&key).await else {
        return;
    };
    let Some(edits) = value
        .as_string()
        .and_then(|json| serde_json::from_str::<Vec<QueuedEdit>>(&json).ok())
    else {
        return;
    };
    for edit in &edits {
        if store
            .apply_optimistic(edit.task_id, |task| merge::apply_patch(task, &edit.patch))
            .is_some()
        {
            store.unconfirmed.update_value(|count| *count += 1);
        }
    }
    store.queued.set(edits);
}

async fn read_outbox(key: &str) -> Result<JsValue, JsValue> {
    let db = database().await?;
    let transaction = db.transaction_with_str(OUTBOX)?;
    request_result(
        &transaction
            .object_store(OUTBOX)?
            .get(&JsValue::from_str(key))?,
    )
    .await
}

async fn write_outbox(store: ProjectStore) -> Result<(), JsValue> {
    let Some(key) = key_of(&store) else {
        return Ok(());
    };
    let Some(edits) = store.queued.try_get_untracked() else {
        return Ok(());
    };
    let db = database().await?;
    let transaction = db.transaction_with_str_and_mode(OUTBOX, IdbTransactionMode::Readwrite)?;
    let outbox = transaction.object_store(OUTBOX)?;
    if edits.is_empty() {
        outbox.delete(&JsValue::from_str(&key))?;
    } else {
        let json = serde_json::to_string(&edits).map_err(|error| error.to_string())?;
        outbox.put_with_key(&JsValue::from_str(&json), &JsValue::from_str(&key))?;
    }
    committed(&transaction).await
}

/// Keeps an edit the server could not be reached for; it stays on the board
/// and goes out when the link is back. A second edit of the same task joins
/// the first, so both go as one change to the version the user saw.
pub fn queue(store: ProjectStore, edit: QueuedEdit) {
    store.queued.update(|edits| {
        match edits
            .iter_mut()
            .find(|queued| queued.task_id == edit.task_id)
        {
            Some(queued) => {
                queued.patch = merge::combine_patches(queued.patch.clone(), edit.patch);
                // The first edit's count stands for both.
                store.unconfirmed.update_value(|count| *count -= 1);
            }
            None => edits.push(edit),
        }
    });
    spawn_local(save_outbox(store));
}

/// Sends the queued edits, oldest first, once the link is live. Stops at
/// the first that cannot reach the server (they wait for the next time);
/// a refused one rolls back and says why, like any refused edit.
pub fn send_queued(store: ProjectStore, notices: Notices) {
    if store.queued.with_untracked(Vec::is_empty) || store.sending.get_value() {
        return;
    }
    store.sending.set_value(true);
    spawn_local(async move {
        while let Some(edit) = store
            .queued
            .try_with_untracked(|edits| edits.first().cloned())
            .flatten()
        {
            let outcome = api::patch_task(&store.id(), edit.task_id, edit.base, &edit.patch).await;
            match outcome {
                Err(failure) if failure.status == 0 => break,
                Ok(task) => store.upsert(vec![task]),
                Err(failure) => {
                    store.roll_back(edit.before);
                    notices.error(crate::pages::task::refusal_notice(&failure));
                }
            }
            store.unconfirmed.update_value(|count| *count -= 1);
            store.queued.update(|edits| {
                edits.remove(0);
            });
            save_outbox(store).await;
        }
        store.sending.try_set_value(false);
    });
}

/// Forgets every board and queued edit on this device (sign-out).
pub fn forget_everything() {
    if let Some(storage) = crate::session::local_storage() {
        let marks: Vec<String> = (0..storage.length().unwrap_or(0))
            .filter_map(|index| storage.key(index).ok().flatten())
            .filter(|name| name.starts_with(KEPT_MARK))
            .collect();
        if marks.is_empty() {
            return;
        }
        for mark in marks {
            let _ = storage.remove_item(&mark);
        }
    }
    spawn_local(clear_device());
}

async fn clear() {
    let Ok(db) = database().await else { return };
    let Ok(transaction) = db.transaction_with_str_sequence_and_mode(
        &Array::of2(&BOARDS.into(), &OUTBOX.into()),
        IdbTransactionMode::Readwrite,
    ) else {
        return;
    };
    for name in [BOARDS, OUTBOX] {
        if let Ok(store) = transaction.object_store(name) {
            let _ = store.clear();
        }
    }
    let _ = committed(&transaction).await;
}
