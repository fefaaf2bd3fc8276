//! Hot-path micro benchmarks: memory-channel put/take/commit per batch, and netcat-style line
//! splitting of a block into events.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flumen::channel::memory::{MemoryChannel, MemoryChannelConfig};
use flumen::channel::Channel;
use flumen::event::Event;

fn batch(n: usize) -> Vec<Event> {
    let block = Bytes::from(vec![b'x'; 256 * n]);
    (0..n)
        .map(|i| Event::new(block.slice(i * 256..(i + 1) * 256)))
        .collect()
}

fn put_take_commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("memory_channel");
    for n in [100usize, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        let ch = MemoryChannel::new(
            "c1",
            MemoryChannelConfig {
                capacity: 100_000,
                transaction_capacity: 10_000,
                ..MemoryChannelConfig::default()
            },
        );
        group.bench_function(format!("put_take_commit_batch_{n}"), |b| {
            b.iter_batched(
                || batch(n),
                |events| {
                    rt.block_on(async {
                        ch.put(events).await.expect("put");
                        let t = ch.take(n).await.expect("take");
                        t.commit().await.expect("commit");
                    })
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn split_lines(c: &mut Criterion) {
    let mut text = Vec::new();
    for i in 0..4096 {
        text.extend_from_slice(format!("{i:010} {}\n", "y".repeat(245)).as_bytes());
    }
    let block = Bytes::from(text);
    let mut group = c.benchmark_group("netcat");
    group.throughput(Throughput::Elements(4096));
    group.bench_function("split_1MiB_block_into_events", |b| {
        b.iter(|| {
            let mut events = Vec::with_capacity(4096);
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &block) {
                events.push(Event::new(block.slice(start..end)));
                start = end + 1;
            }
            events
        })
    });
    group.finish();
}

criterion_group!(benches, put_take_commit, split_lines);
criterion_main!(benches);
