// nostr-tools' gift wrap + unwrap of a kind-15 segment message, N times; the twin of
// Go's BenchmarkWrapUnwrap in shared/giftwrap. Prints one JSON line:
//   {"impl":"nostr-tools","version":"2.25.2","op":"wrap+unwrap","n":N,"seconds":S,"ops_per_sec":R}
// Usage: node bench.mjs [N]   (default 100; a 20-iteration warm-up is not counted)
import { readFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { wrapEvent, unwrapEvent } from 'nostr-tools/nip59'

const n = Number.parseInt(process.argv[2] ?? '100', 10)
if (!Number.isSafeInteger(n) || n < 1) {
  process.stderr.write('bench.mjs: N must be a positive integer\n')
  process.exit(2)
}
const version = JSON.parse(readFileSync(new URL('./node_modules/nostr-tools/package.json', import.meta.url))).version

const worker = generateSecretKey()
const dvm = generateSecretKey()
const dvmPub = getPublicKey(dvm)
const hex = (b) => Buffer.from(b).toString('hex')
const x = createHash('sha256').update(randomBytes(64)).digest('hex')
const start = Math.floor(Date.UTC(2026, 10, 21, 10, 0, 0) / 1000)
// The same shape and size as the Go benchmark's sampleSegment.
const template = {
  kind: 15,
  content: `https://blossom.pow.example/${x}`,
  tags: [
    ['p', dvmPub],
    ['powdo-v', '1'],
    ['file-type', 'application/zip'],
    ['encryption-algorithm', 'aes-gcm'],
    ['decryption-key', hex(randomBytes(32))],
    ['decryption-nonce', hex(randomBytes(12))],
    ['x', x],
    ['ox', createHash('sha256').update(randomBytes(64)).digest('hex')],
    ['size', '2418733'],
    ['fallback', `https://mirror-one.example.org/${x}`],
    ['fallback', `https://mirror-two.example.net/${x}`],
    ['powdo-session', hex(randomBytes(16))],
    ['powdo-segment', '17'],
    ['powdo-start', String(start)],
    ['powdo-end', String(start + 600)],
  ],
}

function once() {
  const wrap = wrapEvent(template, worker, dvmPub)
  const rumor = unwrapEvent(wrap, dvm)
  if (rumor.content !== template.content) throw new Error('round trip changed the rumor')
}

for (let i = 0; i < 20; i++) once()
const t0 = process.hrtime.bigint()
for (let i = 0; i < n; i++) once()
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
process.stdout.write(
  JSON.stringify({ impl: 'nostr-tools', version, op: 'wrap+unwrap', n, seconds, ops_per_sec: n / seconds }) + '\n',
)
