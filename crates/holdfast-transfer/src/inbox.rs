//! The folder incoming files land in, and the only code that writes there.
//!
//! Every path is resolved inside the folder by `cap-std` (openat with
//! `RESOLVE_BENEATH` semantics): a name is one plain component (checked by
//! [`check_name`]), a file is created with `O_CREAT|O_EXCL` (which never
//! follows a symlink already there), and bytes go to a hidden partial file
//! that becomes the real name only once its SHA-256 matched, by a hard link
//! that fails rather than replace anything. A file that fails is removed.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, OpenOptions};
use holdfast_proto::transfer::{check_name, NameError, RejectReason};

/// Space left free after a file is written: a transfer never fills a disk.
pub const RESERVE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("the folder {0} cannot be used: {1}")]
    Folder(PathBuf, std::io::Error),
    #[error("not a plain file name: {0}")]
    Name(#[from] NameError),
    #[error("not enough free space: {needed} bytes needed, {free} free")]
    NoSpace { needed: u64, free: u64 },
    #[error("a file named {0:?} already exists")]
    Exists(String),
    #[error("writing failed: {0}")]
    Io(#[from] std::io::Error),
}

impl InboxError {
    /// What the receiver tells the sender.
    pub fn reason(&self) -> RejectReason {
        match self {
            InboxError::Name(_) => RejectReason::BadName,
            InboxError::NoSpace { .. } => RejectReason::NoSpace,
            InboxError::Io(e) if is_no_space(e) => RejectReason::NoSpace,
            _ => RejectReason::WriteFailed,
        }
    }
}

fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// What to do when the name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collision {
    /// Refuse (the person is asked first).
    Refuse,
    /// Save as `name (1).ext`, `name (2).ext`, … as browsers do.
    KeepBoth,
    /// Replace the existing file (the person said so).
    Replace,
}

/// The receiving folder.
pub struct Inbox {
    dir: Dir,
    path: PathBuf,
}

impl Inbox {
    /// Opens an existing folder.
    pub fn open(path: &Path) -> Result<Inbox, InboxError> {
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(|e| InboxError::Folder(path.into(), e))?;
        Ok(Inbox { dir, path: path.into() })
    }

    /// The user's Downloads folder (XDG `DOWNLOAD`), else `~/Downloads`.
    pub fn default_path() -> Option<PathBuf> {
        dirs::download_dir().or_else(|| dirs::home_dir().map(|h| h.join("Downloads")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes an unprivileged user may still write in the folder.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        let st = rustix::fs::fstatvfs(&self.dir).map_err(std::io::Error::from)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Whether `name` is taken (by anything: a file, a folder, a symlink).
    pub fn exists(&self, name: &str) -> bool {
        self.dir.symlink_metadata(name).is_ok()
    }

    /// Starts receiving `size` bytes for `name`: checks the name and the free
    /// space, and creates a hidden partial file (unique per `tag`).
    pub fn begin(&self, tag: &str, name: &str, size: u64) -> Result<Partial, InboxError> {
        check_name(name)?;
        let free = self.free_bytes()?;
        let needed = size.saturating_add(RESERVE_BYTES);
        if needed > free {
            return Err(InboxError::NoSpace { needed, free });
        }
        let part = format!(".holdfast-{tag}.part");
        let file = self
            .dir
            .open_with(&part, OpenOptions::new().write(true).create_new(true))?;
        Ok(Partial {
            file,
            part,
            name: name.into(),
            written: 0,
        })
    }

    /// Gives verified bytes their name; returns the name used.
    pub fn finish(&self, mut partial: Partial, collision: Collision) -> Result<String, InboxError> {
        partial.file.flush()?;
        partial.file.sync_all()?;
        let result = self.place(&partial, collision);
        // Linked (or failed): the partial name goes either way.
        let _ = self.dir.remove_file(&partial.part);
        result
    }

    fn place(&self, partial: &Partial, collision: Collision) -> Result<String, InboxError> {
        let mut candidates = vec![partial.name.clone()];
        if collision == Collision::KeepBoth {
            candidates.extend(
                (1..100)
                    .map(|n| numbered(&partial.name, n))
                    .filter(|n| check_name(n).is_ok()),
            );
        }
        for name in candidates {
            // link() never replaces: it fails with AlreadyExists instead.
            match self.dir.hard_link(&partial.part, &self.dir, &name) {
                Ok(()) => return Ok(name),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if collision == Collision::Replace {
                        // Only a plain file is replaced; never a folder or a symlink's target.
                        let meta = self.dir.symlink_metadata(&name)?;
                        if !meta.is_file() {
                            return Err(InboxError::Exists(name));
                        }
                        self.dir.remove_file(&name)?;
                        self.dir.hard_link(&partial.part, &self.dir, &name)?;
                        return Ok(name);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(InboxError::Exists(partial.name.clone()))
    }

    /// Removes a partial file (the transfer failed or was stopped).
    pub fn discard(&self, partial: Partial) {
        let part = partial.part.clone();
        drop(partial);
        let _ = self.dir.remove_file(part);
    }
}

/// `name (n).ext`, the extension kept.
fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.').filter(|&i| i > 0) {
        Some(i) => format!("{} ({n}){}", &name[..i], &name[i..]),
        None => format!("{name} ({n})"),
    }
}

/// A file being received.
pub struct Partial {
    file: File,
    part: String,
    name: String,
    written: u64,
}

impl Partial {
    /// The name it will get.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `data` at `offset` (the engine hands bytes out in order; after
    /// a resume `offset` may be below what was written, never above).
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), InboxError> {
        if offset != self.written {
            self.file.seek(SeekFrom::Start(offset))?;
        }
        self.file.write_all(data)?;
        self.written = offset + data.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> (tempfile::TempDir, Inbox) {
        let t = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(t.path()).unwrap();
        (t, inbox)
    }

    #[test]
    fn a_file_appears_under_its_name_only_when_finished() {
        let (t, inbox) = folder();
        let mut p = inbox.begin("1", "report.txt", 11).unwrap();
        p.write_at(0, b"hello ").unwrap();
        p.write_at(6, b"world").unwrap();
        assert!(!t.path().join("report.txt").exists());
        assert_eq!(inbox.finish(p, Collision::Refuse).unwrap(), "report.txt");
        assert_eq!(std::fs::read(t.path().join("report.txt")).unwrap(), b"hello world");
        let left: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec!["report.txt"], "no partial file left");
    }

    #[test]
    fn path_tricks_are_refused() {
        let (t, inbox) = folder();
        for name in ["../x", "/etc/passwd", "a/b", "..", "a\u{1b}[31m", "a\nb"] {
            assert!(
                matches!(inbox.begin("1", name, 1), Err(InboxError::Name(_))),
                "{name:?}"
            );
        }
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_symlink_in_the_folder_is_neither_followed_nor_replaced() {
        let (t, inbox) = folder();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, b"precious").unwrap();
        std::os::unix::fs::symlink(&target, t.path().join("evil.txt")).unwrap();
        for collision in [Collision::Refuse, Collision::Replace] {
            let mut p = inbox.begin("1", "evil.txt", 3).unwrap();
            p.write_at(0, b"bad").unwrap();
            assert!(inbox.finish(p, collision).is_err(), "{collision:?}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(t.path().join("evil.txt").is_symlink());
        // Kept both: the new file gets another name; the link is untouched.
        let mut p = inbox.begin("2", "evil.txt", 3).unwrap();
        p.write_at(0, b"new").unwrap();
        assert_eq!(inbox.finish(p, Collision::KeepBoth).unwrap(), "evil (1).txt");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn an_existing_file_is_kept_unless_the_person_says_replace() {
        let (t, inbox) = folder();
        std::fs::write(t.path().join("a.txt"), b"old").unwrap();
        let mut p = inbox.begin("1", "a.txt", 3).unwrap();
        p.write_at(0, b"new").unwrap();
        assert!(matches!(inbox.finish(p, Collision::Refuse), Err(InboxError::Exists(_))));
        assert_eq!(std::fs::read(t.path().join("a.txt")).unwrap(), b"old");
        let mut p = inbox.begin("2", "a.txt", 3).unwrap();
        p.write_at(0, b"new").unwrap();
        assert_eq!(inbox.finish(p, Collision::Replace).unwrap(), "a.txt");
        assert_eq!(std::fs::read(t.path().join("a.txt")).unwrap(), b"new");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar (2).gz");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
    }

    #[test]
    fn too_big_for_the_disk_is_refused_before_a_byte_is_written() {
        let (t, inbox) = folder();
        let free = inbox.free_bytes().unwrap();
        let err = inbox.begin("1", "huge.bin", free).err().expect("refused");
        assert_eq!(err.reason(), RejectReason::NoSpace, "{err}");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_discarded_file_leaves_nothing() {
        let (t, inbox) = folder();
        let mut p = inbox.begin("1", "x.bin", 3).unwrap();
        p.write_at(0, b"abc").unwrap();
        inbox.discard(p);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
