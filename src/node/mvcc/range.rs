//! Range: reading keys at a revision, with etcd 3.4's limit, count, filter and sort rules.
//!
//! The order of steps matters and is etcd's: `count` is every matching key whatever the
//! limit or filters; when a sort order or a revision filter is requested every key is fetched,
//! then pruned, then sorted, then cut to `limit` (setting `more`); otherwise only `limit + 1`
//! keys are fetched, the extra one telling whether there are `more`. A non-KEY sort target
//! with order NONE sorts ascending, but (like etcd) still fetches only `limit + 1` keys.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::node::mvcc::error::Failure;
use crate::node::mvcc::span::KeySpan;
use crate::node::mvcc::view::ReadView;
use crate::node::mvcc::view::resolve_read_revision;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::RangeResponse;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::proto::etcdserverpb::range_request::SortOrder;
use crate::proto::etcdserverpb::range_request::SortTarget;
use crate::proto::mvccpb::KeyValue;

/// Serves a Range against a view. The response header carries only the revision read
/// (what etcd puts in responses nested in a txn); the server replaces it at the top level.
pub(crate) fn range(view: &impl ReadView, req: &RangeRequest) -> Result<RangeResponse, Failure> {
    let at = resolve_read_revision(view, req.revision)?;
    let live = view.index().live(KeySpan::new(&req.key, &req.range_end), at);
    let mut resp = RangeResponse {
        header: Some(ResponseHeader { revision: view.read_revision(), ..Default::default() }),
        count: live.len() as i64,
        ..Default::default()
    };
    if req.count_only {
        return Ok(resp);
    }

    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let fetch = if req.sort_order != SortOrder::None as i32 || filtered || req.limit <= 0 {
        usize::MAX
    } else {
        usize::try_from(req.limit.saturating_add(1)).unwrap_or(usize::MAX)
    };
    let mut kvs = live.iter().take(fetch).map(|(_, rev)| view.kv_at(*rev)).collect::<Result<Vec<_>, _>>()?;

    kvs.retain(|kv| {
        (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
            && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
    });

    sort(&mut kvs, req.sort_order, req.sort_target);

    if req.limit > 0 && kvs.len() as i64 > req.limit {
        kvs.truncate(req.limit as usize);
        resp.more = true;
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Bytes::new();
        }
    }
    resp.kvs = kvs;
    Ok(resp)
}

fn sort(kvs: &mut [KeyValue], order: i32, target: i32) {
    let Ok(target) = SortTarget::try_from(target) else {
        // etcd has no sorter for an unknown target (and would crash); leave key order
        return;
    };
    let mut order = SortOrder::try_from(order).ok();
    if target != SortTarget::Key && order == Some(SortOrder::None) {
        order = Some(SortOrder::Ascend);
    }
    let by = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    // Stable sorts, so equal elements stay in key order: etcd's sort is unstable, any order
    // of ties is one etcd could produce, and this one is deterministic across members.
    match order {
        Some(SortOrder::Ascend) => kvs.sort_by(by),
        Some(SortOrder::Descend) => kvs.sort_by(|a, b| by(b, a)),
        _ => {}
    }
}
