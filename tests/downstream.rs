//! What a downstream crate writes, compiled as one: each test is a place where using the pool
//! used to need a cast or a workaround (guards passed as `impl Write`, `Display` of a guard,
//! `#[derive(Default)]`, generic code over guards, limits known only at run time, owned buffer
//! guards, naming `from_fn` pools, tokio's `read_buf`).

use reuse_pool::buf::Calibration;
use reuse_pool::{BufPool, Pool, Pooled, PooledBuf, PooledBufOwned, PooledOwned};
use std::borrow::{Borrow, BorrowMut};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static BUFS: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(4096))
    .reset(Vec::clear)
    .keep_if(|v| v.capacity() <= 64 << 10);

static STRINGS: Pool<String> = Pool::new(String::new).reset(String::clear);

fn emit(mut w: impl Write) -> io::Result<()> {
    w.write_all(b"emitted")
}

fn slurp(mut r: impl Read) -> io::Result<String> {
    let mut s = String::new();
    r.read_to_string(&mut s)?;
    Ok(s)
}

#[test]
fn guards_are_io_writers_and_readers() {
    let mut guard = BUFS.get();
    let mut src: &[u8] = b"copied ";
    let n = io::copy(&mut src, &mut guard).unwrap();
    assert_eq!(n, 7);
    emit(&mut guard).unwrap();
    write!(guard, " {}", 42).unwrap();
    assert_eq!(&guard[..], b"copied emitted 42");

    // A guard over a reader reads.
    let readers: Pool<io::Cursor<Vec<u8>>> = Pool::new(|| io::Cursor::new(b"read me".to_vec()));
    assert_eq!(slurp(readers.get()).unwrap(), "read me");

    // The owned guard too.
    let shared = Arc::new(Pool::new(Vec::<u8>::new).reset(Vec::clear));
    let mut owned = shared.get_owned();
    emit(&mut owned).unwrap();
    assert_eq!(&owned[..], b"emitted");
}

#[test]
fn guards_display_and_fmt_write() {
    let mut g = STRINGS.get();
    let n = 1;
    write!(g, "a-{n}").unwrap();
    assert_eq!(format!("{g}"), "a-1");
    assert_eq!(g.to_string(), "a-1");
    assert_eq!(format!("{g:?}"), "\"a-1\"");
    drop(g);
    assert_eq!(*STRINGS.get(), "", "reset ran");
}

#[derive(Default)]
struct Server {
    bufs: Pool<Vec<u8>>,
    names: Pool<String>,
}

#[test]
fn pools_in_default_structs() {
    let s = Server::default();
    s.bufs.get().push(1);
    assert_eq!(s.bufs.stats().misses, 1);
    assert!(s.names.get().is_empty());
}

/// Generic code over guards needs only the bounds it uses.
fn len_of<T: AsRef<[u8]>>(g: &Pooled<'_, T>) -> usize {
    g.as_ref().len()
}

fn total_len<T: Borrow<[u8]>>(items: &[T]) -> usize {
    items.iter().map(|i| i.borrow().len()).sum()
}

fn first_byte<T: Borrow<Vec<u8>>>(x: T) -> Option<u8> {
    x.borrow().first().copied()
}

fn zero<T: BorrowMut<Vec<u8>>>(x: &mut T) {
    x.borrow_mut().iter_mut().for_each(|b| *b = 0);
}

fn shout<S: AsMut<str>>(mut s: S) {
    s.as_mut().make_ascii_uppercase();
}

#[test]
fn guards_in_generic_code() {
    let mut g = BUFS.get();
    g.extend_from_slice(b"abc");
    assert_eq!(len_of(&g), 3);
    assert_eq!(first_byte(&*g), Some(b'a'));
    let as_slice: &[u8] = g.as_ref();
    assert_eq!(as_slice, b"abc");
    zero(&mut g);
    assert_eq!(&g[..], [0, 0, 0]);
    drop(g);

    let mut s = STRINGS.get();
    s.push_str("quiet");
    shout(&mut s);
    assert_eq!(*s, "QUIET");
    let as_str: &str = s.as_ref();
    assert_eq!(as_str, "QUIET");
    drop(s);

    let buf_pool = BufPool::new();
    let mut a = buf_pool.get(10);
    a.extend_from_slice(b"12");
    let mut b = buf_pool.get(10);
    b.extend_from_slice(b"345");
    assert_eq!(total_len(&[a, b]), 5);
}

#[test]
fn reset_and_keep_if_from_configuration() {
    // A limit read at run time, captured by the closures.
    let limit: usize = "1024".parse().unwrap();
    let keep: usize = "2".parse().unwrap();
    let pool = Pool::new(|| Vec::<u8>::with_capacity(16))
        .reset_with(move |v: &mut Vec<u8>| v.truncate(keep))
        .keep_if_with(move |v: &Vec<u8>| v.capacity() <= limit);

    let mut g = pool.get();
    g.extend_from_slice(b"abcdef");
    drop(g);
    assert_eq!(
        *pool.get(),
        b"ab",
        "reset_with truncated to the captured length"
    );

    pool.put(Vec::with_capacity(limit + 1));
    let s = pool.stats();
    assert_eq!(
        s.drops, 1,
        "keep_if_with dropped the buffer over the captured limit"
    );
    assert_eq!(s.puts, 2);

    // `const` builders still chain after a closure, and the `static` chain is unchanged.
    let pool = Pool::new(Vec::<u8>::new)
        .keep_if_with(move |v: &Vec<u8>| v.capacity() <= limit)
        .reset(Vec::clear)
        .max_per_thread(4);
    assert_eq!(pool.get_max_per_thread(), 4);
    pool.get().push(9);
    assert!(pool.get().is_empty());
    assert_eq!(
        BUFS.get_max_per_thread(),
        reuse_pool::DEFAULT_MAX_PER_THREAD
    );
}

/// A pool used before `reset_with`/`keep_if_with` changed its types: its guards must run the
/// new pool's closures (its storage, which keeps the guards' return path, is made anew), and
/// the objects cached before are dropped, not lost.
#[test]
fn closures_set_on_a_used_pool_are_the_ones_guards_run() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Counted(Vec<u8>, Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }
    let d = dropped.clone();
    let pool = Pool::from_fn(move || Counted(Vec::with_capacity(8), d.clone()));
    let mut g = pool.get();
    g.0.push(1);
    drop(g); // cached, with a guard return path made for the first pool's types
    assert_eq!(pool.stats().puts, 1);

    let resets = Arc::new(AtomicUsize::new(0));
    let r = resets.clone();
    let pool = pool.reset_with(move |c: &mut Counted| {
        r.fetch_add(1, Ordering::Relaxed);
        c.0.clear();
    });
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        1,
        "the object cached before reset_with was dropped"
    );
    let mut g = pool.get();
    g.0.extend_from_slice(b"xyz");
    drop(g);
    assert_eq!(
        resets.load(Ordering::Relaxed),
        1,
        "the guard ran the new reset"
    );
    assert!(pool.get().0.is_empty());
    assert_eq!(resets.load(Ordering::Relaxed), 2);

    let kept = Arc::new(AtomicUsize::new(0));
    let k = kept.clone();
    let pool = pool.keep_if_with(move |_: &Counted| {
        k.fetch_add(1, Ordering::Relaxed);
        false
    });
    assert_eq!(dropped.load(Ordering::Relaxed), 2);
    drop(pool.get());
    assert_eq!(
        kept.load(Ordering::Relaxed),
        1,
        "the guard ran the new keep_if"
    );
    assert_eq!(
        resets.load(Ordering::Relaxed),
        3,
        "and the reset carried over"
    );
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        3,
        "keep_if refused it: dropped"
    );
    assert_eq!(pool.stats().drops, 1);
    drop(pool);
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        3,
        "nothing else was cached"
    );
}

#[test]
fn owned_buffers_move_into_threads() {
    let bufs = Arc::new(BufPool::new().calibration(Calibration::DEFAULT));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut buf: PooledBufOwned = bufs.get_owned(1000);
            std::thread::spawn(move || {
                write!(buf, "thread {i}").unwrap();
                buf.len()
            })
        })
        .collect();
    let lens: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(lens, [8, 8, 8, 8]);
    let class = bufs.class_stats(1024).unwrap();
    assert_eq!(class.puts, 4, "every owned buffer came back");
    assert!(class.misses <= 4);

    let kept = PooledBufOwned::detach(bufs.get_owned(1000));
    assert_eq!(kept.capacity(), 1024);
    assert!(Arc::ptr_eq(PooledBufOwned::pool(&bufs.get_owned(1)), &bufs));
}

type Create = Box<dyn Fn() -> Vec<u8> + Send + Sync>;

struct Config {
    size: usize,
}

struct Service {
    bufs: Pool<Vec<u8>, Create>,
}

static SERVICE_BUFS: OnceLock<Pool<Vec<u8>, Create>> = OnceLock::new();

#[test]
fn from_fn_pools_in_fields_and_statics() {
    let cfg = Config { size: 300 };
    let size = cfg.size;
    let service = Service {
        bufs: Pool::from_fn(Box::new(move || Vec::with_capacity(size)) as Create),
    };
    assert!(service.bufs.get().capacity() >= 300);

    let pool = SERVICE_BUFS.get_or_init(|| Pool::from_fn(Box::new(move || vec![7; size])));
    assert_eq!(pool.get().len(), 300);

    // A guard of such a pool names its type the same way.
    let g: Pooled<'_, Vec<u8>, Create> = pool.get();
    assert_eq!(g[0], 7);
}

fn is_send<X: Send>(_: &X) {}
fn is_sync<X: Sync>(_: &X) {}

#[test]
fn guard_auto_traits() {
    // With plain `fn` types a guard is `Send` and `Sync` when `T` is.
    let g = BUFS.get();
    is_send(&g);
    is_sync(&g);
    let owned = Arc::new(Pool::new(Vec::<u8>::new)).get_owned();
    is_send(&owned);

    // `Pooled` needs the pool to be `Sync` only: a `create` that is `Sync` but not `Send`
    // (it holds a `MutexGuard`) still gives `Send` guards. (`PooledOwned` needs `Send` as well,
    // see its docs.)
    static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let held = M.lock().unwrap();
    let pool = Pool::from_fn(move || {
        let _ = &held;
        0u8
    });
    let g = pool.get();
    is_send(&g);
    assert_eq!(*g, 0);

    static PB: BufPool = BufPool::new();
    let pb: PooledBuf<'_> = PB.get(1);
    is_send(&pb);
    is_sync(&pb);
    assert!(pb.is_empty());
}

#[test]
fn owned_guard_of_a_pool_moves_into_a_thread() {
    let pool = Arc::new(Pool::new(String::new).reset(String::clear));
    let mut s: PooledOwned<String> = pool.get_owned();
    let t = std::thread::spawn(move || {
        s.push_str("moved");
        format!("{s}")
    });
    assert_eq!(t.join().unwrap(), "moved");
    assert_eq!(pool.stats().puts, 1);
}

#[cfg(feature = "bytes")]
mod with_bytes {
    use super::*;
    use bytes::BufMut;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn read_buf_into_pooled_buffers() {
        static BUFS: BufPool = BufPool::new();
        let mut src: &[u8] = b"hello from tokio";
        let mut buf = BUFS.get(8);
        while AsyncReadExt::read_buf(&mut src, &mut buf).await.unwrap() > 0 {}
        assert_eq!(&buf[..], b"hello from tokio");
        drop(buf);

        let shared = Arc::new(BufPool::new());
        let mut owned = shared.get_owned(4);
        let mut src: &[u8] = b"owned";
        AsyncReadExt::read_buf(&mut src, &mut owned).await.unwrap();
        owned.put_u8(b'!');
        assert_eq!(&owned[..], b"owned!");

        let mut g = super::BUFS.get();
        let mut src: &[u8] = b"guard";
        AsyncReadExt::read_buf(&mut src, &mut g).await.unwrap();
        g.put_slice(b"ed");
        assert_eq!(&g[..], b"guarded");
    }
}

/// Objects of every shape come back as they went in: those moved word by word (8 to 64 bytes,
/// aligned to 8, padding included) and those moved whole (smaller alignment, larger sizes), by
/// `put`/`take` and by guards.
#[test]
fn objects_of_every_shape_come_back_intact() {
    fn round_trip<T: Send + Clone + PartialEq + std::fmt::Debug + 'static>(make: fn() -> T, v: T) {
        let pool = Pool::new(make).max_shared(0);
        pool.put(v.clone());
        assert_eq!(pool.take(), v, "put/take of {}", std::any::type_name::<T>());
        {
            let mut g = pool.get(); // created
            *g = v.clone();
        }
        assert_eq!(*pool.get(), v, "guard of {}", std::any::type_name::<T>());
        let s = pool.stats();
        assert_eq!((s.hits, s.misses), (2, 1), "{}", std::any::type_name::<T>());
    }
    round_trip(|| 0u8, 200u8);
    round_trip(|| [0u32; 3], [1, 2, 3]);
    round_trip(|| (0u8, 0u64), (7u8, u64::MAX - 7));
    round_trip(String::new, String::from("eight words or fewer"));
    round_trip(|| [0u64; 8], [9u64; 8]);
    round_trip(|| [0u64; 9], [11u64; 9]);
    round_trip(|| vec![0u8; 0], vec![1u8, 2, 3]);
    round_trip(|| Box::new([0u8; 100]), Box::new([5u8; 100]));
}

/// A guard is two words (its pool and its home cache) and its object, and an `Option` of one
/// costs nothing more.
#[test]
fn a_guard_is_two_words_and_its_object() {
    use std::mem::size_of;
    let word = size_of::<usize>();
    assert_eq!(
        size_of::<Pooled<'_, Vec<u8>>>(),
        2 * word + size_of::<Vec<u8>>()
    );
    assert_eq!(size_of::<Pooled<'_, u8>>(), 3 * word);
    // `u64` has no niche of its own: the `Option` fits only through the guard's own words.
    assert_eq!(
        size_of::<Option<Pooled<'_, u64>>>(),
        size_of::<Pooled<'_, u64>>()
    );
}
