// Cross-implementation check of pow.do gift wraps with nostr-tools (NIP-59/NIP-44), run by
// shared/giftwrap/interop_test.go. Usage: node interop.mjs <op>, with a JSON request on
// stdin (keys travel on stdin, never in argv) and one JSON answer on stdout.
//
//   unwrap        {sk, wrap}            -> {rumor, sender, wrap_sig_ok, rumor_id_ok}
//   wrap-segment  {recipient, segment}  -> {sender, rumor_id, wrap}
//                 builds the kind-15 rumor from PROTOCOL.md section 3 on its own
//   wrap          {recipient, template} -> {sender, rumor_id, wrap}
import { readFileSync } from 'node:fs'
import { generateSecretKey, getPublicKey, verifyEvent, getEventHash } from 'nostr-tools/pure'
import { createRumor, createSeal, createWrap, unwrapEvent } from 'nostr-tools/nip59'
import { hexToBytes } from 'nostr-tools/utils'

function fail(msg) {
  process.stderr.write(`interop.mjs: ${msg}\n`)
  process.exit(1)
}

// wrapRumor goes through the three nostr-tools steps explicitly so the rumor id is known.
function wrapRumor(template, recipient) {
  const sk = generateSecretKey()
  const rumor = createRumor(template, sk)
  const seal = createSeal(rumor, sk, recipient)
  const wrap = createWrap(seal, recipient)
  return { sender: getPublicKey(sk), rumor_id: rumor.id, wrap }
}

// segmentTemplate is PROTOCOL.md section 3, written independently of the Go builder.
function segmentTemplate(recipient, s) {
  const tags = [
    ['p', recipient],
    ['file-type', 'application/zip'],
    ['encryption-algorithm', 'aes-gcm'],
    ['decryption-key', s.key],
    ['decryption-nonce', s.nonce],
    ['x', s.x],
    ['ox', s.ox],
    ['size', String(s.size)],
    ...s.fallbacks.map((u) => ['fallback', u]),
    ['powdo-v', '1'],
    ['powdo-session', s.session],
    ['powdo-segment', String(s.index)],
    ['powdo-start', String(s.start)],
    ['powdo-end', String(s.end)],
  ]
  return { kind: 15, content: s.url, tags, created_at: Math.floor(Date.now() / 1000) }
}

const op = process.argv[2]
let req
try {
  req = JSON.parse(readFileSync(0, 'utf8'))
} catch (e) {
  fail(`bad request on stdin: ${e.message}`)
}

let out
try {
  switch (op) {
    case 'unwrap': {
      const sk = hexToBytes(req.sk)
      const wrapSigOK = verifyEvent({ ...req.wrap })
      const rumor = unwrapEvent(req.wrap, sk)
      const me = getPublicKey(sk)
      if (!rumor.tags.some((t) => t[0] === 'p' && t[1] === me)) fail('rumor has no p tag for us')
      out = { rumor, sender: rumor.pubkey, wrap_sig_ok: wrapSigOK, rumor_id_ok: getEventHash(rumor) === rumor.id }
      break
    }
    case 'wrap-segment':
      out = wrapRumor(segmentTemplate(req.recipient, req.segment), req.recipient)
      break
    case 'wrap':
      out = wrapRumor(req.template, req.recipient)
      break
    default:
      fail(`unknown op ${JSON.stringify(op)} (want unwrap, wrap-segment or wrap)`)
  }
} catch (e) {
  fail(`${op}: ${e.message}`)
}
process.stdout.write(JSON.stringify(out) + '\n')
