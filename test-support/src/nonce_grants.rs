//! The nonce-grant race: several stores on one database ask for blocks of a key version's nonces
//! at once, and their grants must tile `0..limit` exactly (FORMATS.md §1, `KeyStore::reserve_nonces`).

use std::ops::Range;

/// Runs one thread per entry of `stores`, each calling `reserve` on its store until it is granted
/// nothing; checks that the grants, sorted, tile `0..limit` with none over `block` long (no
/// overlap, no gap, nothing past the limit), and returns them sorted.
///
/// # Panics
/// When a grant overlaps another, leaves a gap, is longer than `block`, or the grants do not end
/// at `limit`; or when a thread panics.
pub fn race<S: Sync + ?Sized>(
    stores: &[&S],
    block: u64,
    limit: u64,
    reserve: impl Fn(&S) -> Range<u64> + Sync,
) -> Vec<Range<u64>> {
    let reserve = &reserve;
    let mut grants: Vec<Range<u64>> = std::thread::scope(|scope| {
        let racers: Vec<_> = stores
            .iter()
            .map(|&store| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let g = reserve(store);
                        if g.is_empty() {
                            return mine;
                        }
                        mine.push(g);
                    }
                })
            })
            .collect();
        racers
            .into_iter()
            .flat_map(|r| r.join().expect("a racing store's thread"))
            .collect()
    });
    grants.sort_by_key(|g| g.start);
    let mut next = 0;
    for g in &grants {
        assert_eq!(g.start, next, "grants overlap or leave a gap: {grants:?}");
        assert!(g.end - g.start <= block, "a grant over the block: {g:?}");
        next = g.end;
    }
    assert_eq!(next, limit, "grants pass or fall short of the limit");
    grants
}
