//! How a cached value is stored: `<version>:<tag><payload>`, and the one
//! rule that decides whether a write may replace what is there.
//!
//! The version is what the value was read at: the project's seq for tasks
//! and project stamps, the project's members version for roles and member
//! lists. A write replaces an entry only with a newer version (or fills an
//! entry that was invalidated at the same version), so a slow fill that read
//! the database before a change can never overwrite what the change wrote.
//! The same rule runs inside Redis as [`COMPARE_AND_SET`] and in the
//! in-process store as [`supersedes`]; a test checks they agree.

/// What an entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A value: the payload is its JSON.
    Value,
    /// Known to be absent at this version (a deleted task, a revoked
    /// session, a non-member's role).
    Absent,
    /// Known to be stale at this version: read the database and refill.
    Invalid,
}

impl Tag {
    fn byte(self) -> u8 {
        match self {
            Tag::Value => b'v',
            Tag::Absent => b'n',
            Tag::Invalid => b'x',
        }
    }

    fn from_byte(byte: u8) -> Option<Tag> {
        match byte {
            b'v' => Some(Tag::Value),
            b'n' => Some(Tag::Absent),
            b'x' => Some(Tag::Invalid),
            _ => None,
        }
    }
}

/// A decoded entry, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub version: i64,
    pub tag: Tag,
    pub payload: &'a [u8],
}

pub fn encode(version: i64, tag: Tag, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + 22);
    bytes.extend_from_slice(version.to_string().as_bytes());
    bytes.push(b':');
    bytes.push(tag.byte());
    bytes.extend_from_slice(payload);
    bytes
}

/// `None` for bytes that are not an entry (another program's key, a
/// format from another release): treated as a miss.
pub fn decode(bytes: &[u8]) -> Option<Entry<'_>> {
    let colon = bytes.iter().position(|&byte| byte == b':')?;
    let version = std::str::from_utf8(&bytes[..colon]).ok()?.parse().ok()?;
    let tag = Tag::from_byte(*bytes.get(colon + 1)?)?;
    Some(Entry {
        version,
        tag,
        payload: &bytes[colon + 2..],
    })
}

/// Whether `new` may replace `old` (absent when the key holds nothing).
pub fn supersedes(new: &Entry<'_>, old: Option<&[u8]>) -> bool {
    let Some(old) = old.and_then(decode) else {
        return true;
    };
    old.version < new.version || (old.version == new.version && old.tag == Tag::Invalid)
}

/// [`supersedes`] as a Redis script: `KEYS[1]` the key, `ARGV[1]` the
/// encoded entry, `ARGV[2]` its time to live in seconds. Returns 1 when it
/// wrote. Runs atomically in Redis, so two instances filling and
/// invalidating the same key cannot interleave.
pub const COMPARE_AND_SET: &str = r"
local new = ARGV[1]
local new_version = tonumber(string.sub(new, 1, string.find(new, ':', 1, true) - 1))
local old = redis.call('GET', KEYS[1])
if old then
  local colon = string.find(old, ':', 1, true)
  local old_version = colon and tonumber(string.sub(old, 1, colon - 1))
  if old_version and (old_version > new_version or
      (old_version == new_version and string.sub(old, colon + 1, colon + 1) ~= 'x')) then
    return 0
  end
end
redis.call('SET', KEYS[1], new, 'EX', ARGV[2])
return 1
";

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let bytes = encode(42, Tag::Value, br#"{"id":1}"#);
        assert_eq!(bytes, br#"42:v{"id":1}"#);
        let entry = decode(&bytes).unwrap();
        assert_eq!(entry.version, 42);
        assert_eq!(entry.tag, Tag::Value);
        assert_eq!(entry.payload, br#"{"id":1}"#);
        assert_eq!(
            decode(&encode(0, Tag::Absent, b"")).unwrap().tag,
            Tag::Absent
        );
    }

    #[test]
    fn foreign_bytes_are_not_entries() {
        for junk in [&b""[..], b"abc", b"12", b"12:", b"12:q", b"x:v", b":v"] {
            assert_eq!(decode(junk), None, "{junk:?}");
        }
    }

    /// A write, what it finds stored, and whether it may replace it.
    pub type Case = (&'static [u8], Option<&'static [u8]>, bool);

    /// The cases the Redis script must agree with too (see the store tests).
    pub const CASES: &[Case] = &[
        (b"5:v{}", None, true),
        (b"5:v{}", Some(b"4:v{}"), true),
        (b"5:v{}", Some(b"6:v{}"), false),
        (b"5:v{}", Some(b"5:v{}"), false),
        (b"5:v{}", Some(b"5:n"), false),
        (b"5:v{}", Some(b"5:x"), true),
        (b"5:x", Some(b"5:v{}"), false),
        (b"5:x", Some(b"4:v{}"), true),
        (b"5:n", Some(b"4:v{}"), true),
        (b"5:v{}", Some(b"not an entry"), true),
    ];

    #[test]
    fn only_newer_versions_replace_an_entry() {
        for &(new, old, expected) in CASES {
            let new = decode(new).unwrap();
            assert_eq!(supersedes(&new, old), expected, "{new:?} over {old:?}");
        }
    }
}
