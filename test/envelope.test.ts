import { EnvelopeError } from '../daemon/errors.js';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, truncate, appendFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EnvelopeWriter } from '../daemon/record/EnvelopeWriter.js';
import { repairEnvelope } from '../daemon/record/recovery.js';
import { WAV_HEADER_BYTES, wavHeader } from '../daemon/record/wavFormat.js';
import {
  DEFAULT_CHUNK_SIZE,
  DEK_BYTES,
  envelopeSize,
  FIXED_HEADER_BYTES,
  newEnvelope,
  rewrapHeader,
  STREAM_CHUNK_SIZE,
  TAG_BYTES,
  unwrapDek,
} from '../daemon/seal/envelope.js';
import { readEnvelopeHeader } from '../daemon/seal/envelopeFile.js';
import checkEnvelope from '../workers/checkEnvelope.js';
import decryptFile from '../workers/decryptFile.js';
import encryptFile from '../workers/encryptFile.js';

const kek = { id: 'kek-2026-01', ...generateKeyPairSync('rsa', { modulusLength: 3072 }) };

async function sealed(plain: Buffer, chunkSize: number) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-envelope-'));
  const src = path.join(dir, 'a.wav');
  const dest = `${src}.enc`;
  await writeFile(src, plain);
  const { dek, header } = newEnvelope(kek, chunkSize);
  const result = encryptFile({ src, dest, dek, header: header.bytes });
  return { dir, src, dest, dek, result, header };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('envelope round trip: empty, 1 byte, chunk boundaries ±1, several chunks, chunks of several cipher pieces, the default chunk', async () => {
  const C = 1024;
  const cases = [
    [0, C],
    [1, C],
    [C - 1, C],
    [C, C],
    [C + 1, C],
    [3 * C, C],
    [3 * C + 5, C],
    [250_000, 100_000],
    [DEFAULT_CHUNK_SIZE * 2 + 12_345, DEFAULT_CHUNK_SIZE],
  ] as const;
  for (const [size, chunkSize] of cases) {
    const plain = randomBytes(size);
    const { dir, src, dest, result, header, dek: key } = await sealed(plain, chunkSize);
    const stored = await readFile(dest);
    assert.equal(stored.length, envelopeSize(header.bytes.length, chunkSize, size), `size ${size}: length`);
    assert.deepEqual([result.plainBytes, result.bytes], [size, stored.length]);
    // The sealing check: the envelope as stored, hashed, decrypts to exactly the source file.
    assert.deepEqual(checkEnvelope({ envelope: dest, plain: src, dek: key }), { sha256: sha(stored), bytes: stored.length, plainBytes: size });
    const h = readEnvelopeHeader(dest);
    assert.equal(h.kekId, 'kek-2026-01');
    // The data key comes back only through the KEK's private key.
    const dek = unwrapDek(kek.privateKey, h.wrappedDek, h.kekId);
    const out = path.join(dir, 'out.wav');
    const back = decryptFile({ src: dest, dest: out, dek });
    assert.equal(back.plainSha256, sha(plain));
    assert.deepEqual(await readFile(out), plain, `size ${size}: plaintext back`);
  }
});

test('envelope: a tampered chunk, swapped chunks, truncation, appended bytes, an edited header and the wrong key each fail, naming the chunk', async () => {
  const C = 1024;
  const plain = randomBytes(4 * C + 100);
  const fresh = async () => sealed(plain, C);
  const fails = async (mutate: (file: string, headerLen: number) => Promise<void>, message: RegExp, chunk?: number) => {
    const { dest, dek, header } = await fresh();
    await mutate(dest, header.bytes.length);
    assert.throws(
      () => decryptFile({ src: dest, dek }),
      (err: unknown) => err instanceof EnvelopeError && message.test(err.message) && (chunk === undefined || err.chunk === chunk),
    );
  };
  const S = C + TAG_BYTES;
  await fails(
    async (f, H) => {
      const b = await readFile(f);
      b[H + S + 10]! ^= 1;
      await writeFile(f, b);
    },
    /chunk 1 does not authenticate/,
    1,
  );
  await fails(
    async (f, H) => {
      const b = await readFile(f);
      const c0 = Buffer.from(b.subarray(H, H + S));
      b.copy(b, H, H + S, H + 2 * S);
      c0.copy(b, H + S);
      await writeFile(f, b);
    },
    /chunk 0 does not authenticate/,
    0,
  );
  await fails(async (f, H) => truncate(f, H + 3 * S), /chunk 2 \(the last\)/, 2);
  await fails(async (f, H) => truncate(f, H + 3 * S + 50), /chunk 3 \(the last\)/, 3);
  // The short last chunk (100 bytes) now reads as part of a full one: found at chunk 4.
  await fails(async (f) => appendFile(f, randomBytes(S)), /chunk 4 does not authenticate/, 4);
  await fails(async (f) => appendFile(f, Buffer.alloc(3)), /chunk 4 \(the last\)/, 4);
  await fails(async (f) => {
    // The chunk size or file nonce (the fixed header) edited: the header hash in every chunk's AAD no longer matches.
    const b = await readFile(f);
    b[FIXED_HEADER_BYTES - 33]! ^= 1;
    await writeFile(f, b);
  }, /does not belong to this envelope/);
  await fails(async (f) => {
    const b = await readFile(f);
    b[9] = 1; // flags: reserved in version 1
    await writeFile(f, b);
  }, /version 1 with flags 1, which are reserved/);
  await fails(
    async (f) => {
      const b = await readFile(f);
      b[13] = 1; // chunk size 1024 → 1025: inside the AAD, outside the commitment
      await writeFile(f, b);
    },
    /chunk 0 does not authenticate/,
    0,
  );
  const { dest } = await fresh();
  assert.throws(() => decryptFile({ src: dest, dek: randomBytes(DEK_BYTES) }), /does not belong to this envelope/);
  const other = { id: 'kek-other', ...generateKeyPairSync('rsa', { modulusLength: 2048 }) };
  assert.throws(
    () => unwrapDek(other.privateKey, readEnvelopeHeader(dest).wrappedDek, other.id),
    /cannot unwrap the data key with KEK kek-other/,
    'the wrong KEK cannot unwrap the data key',
  );
  await writeFile(dest, 'RIFF....WAVEfmt ');
  assert.throws(() => readEnvelopeHeader(dest), /not a callvault envelope/);
});

test('envelope: re-wrapping under another KEK rewrites the key slot only; the chunks still open with the same data key', async () => {
  const plain = randomBytes(3000);
  const { dest, dek, header } = await sealed(plain, 1024);
  const next = { id: 'kek-2027-01', ...generateKeyPairSync('rsa', { modulusLength: 2048 }) };
  const moved = rewrapHeader(header, dek, next);
  assert.deepEqual(moved.bytes.subarray(0, FIXED_HEADER_BYTES), header.bytes.subarray(0, FIXED_HEADER_BYTES));
  const stored = await readFile(dest);
  await writeFile(dest, Buffer.concat([moved.bytes, stored.subarray(header.bytes.length)]));
  const h = readEnvelopeHeader(dest);
  assert.equal(h.kekId, 'kek-2027-01');
  assert.throws(() => unwrapDek(kek.privateKey, h.wrappedDek, kek.id), /cannot unwrap/);
  assert.equal(decryptFile({ src: dest, dek: unwrapDek(next.privateKey, h.wrappedDek, h.kekId) }).plainSha256, sha(plain));
  assert.throws(() => rewrapHeader(header, randomBytes(DEK_BYTES), next), /does not belong/);
});

test('envelope: the sealing check refuses an envelope that does not match its source byte for byte', async () => {
  const plain = randomBytes(5000);
  const { src, dest, dek } = await sealed(plain, 1024);
  assert.equal(checkEnvelope({ envelope: dest, plain: src, dek }).plainBytes, 5000);
  const changed = Buffer.from(plain);
  changed[4000]! ^= 1;
  await writeFile(src, changed);
  assert.throws(() => checkEnvelope({ envelope: dest, plain: src, dek }), /chunk 3 of .* does not decrypt to the bytes of/);
  await writeFile(src, Buffer.concat([plain, Buffer.from([0])]));
  assert.throws(() => checkEnvelope({ envelope: dest, plain: src, dek }), /holds 5000 bytes of .*, which has 5001/);
});

test('an envelope written as the call runs (version 2): round trip at chunk boundaries; a crash copy is closed by recovery without the key, its unwritten chunks found; unterminated or gapped envelopes open only as the signed metadata allows', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-stream-'));
  const CS = STREAM_CHUNK_SIZE;
  const frames = (bytes: number) => bytes / 4;
  const open = (file: string, stream?: Parameters<typeof decryptFile>[0]['stream'], dest?: string) => {
    const h = readEnvelopeHeader(file);
    return decryptFile({ src: file, dest, dek: unwrapDek(kek.privateKey, h.wrappedDek, h.kekId), stream });
  };
  for (const bytes of [0, 4, CS - 4, CS, CS + 4, 3 * CS + 400]) {
    const file = path.join(dir, `${bytes}.wav.enc`);
    const audio = randomBytes(bytes);
    const w = await EnvelopeWriter.create(file, 2, kek, 1 << 20);
    // In uneven pieces, as the mixer hands them over.
    for (let o = 0; o < bytes; ) {
      const n = Math.min(bytes - o, 4 * (1 + randomInt(900)));
      w.write(new Int16Array(audio.buffer.slice(audio.byteOffset + o, audio.byteOffset + o + n)), frames(n));
      o += n;
    }
    assert.equal((await w.close()).dataBytes, bytes);
    const h = readEnvelopeHeader(file);
    assert.deepEqual([h.version, h.leadBytes, h.chunkSize], [2, WAV_HEADER_BYTES, CS]);
    const out = path.join(dir, `${bytes}.wav`);
    open(file, undefined, out);
    assert.deepEqual(await readFile(out), Buffer.concat([wavHeader(2, bytes), audio]), `${bytes} bytes back, under the WAV header sealed at close`);
    if (bytes >= CS) {
      // Cut after a whole chunk: the final chunk is gone, which only a recovered recording may show.
      const cut = `${file}.cut`;
      await writeFile(
        cut,
        (await readFile(file)).subarray(0, h.bytes.length + WAV_HEADER_BYTES + TAG_BYTES + (CS + TAG_BYTES) * Math.floor(bytes / CS)),
      );
      assert.throws(() => open(cut), /without its final chunk: truncated/);
    }
  }

  // A crash: three whole chunks and part of a fourth on disk, the lead never written.
  const live = path.join(dir, 'live.wav.enc');
  const audio = randomBytes(3 * CS + 1000);
  const w = await EnvelopeWriter.create(live, 2, kek, 1 << 20);
  w.write(new Int16Array(audio.buffer, audio.byteOffset, audio.length / 2), frames(audio.length));
  const H = readEnvelopeHeader(live).bytes.length;
  const audioStart = H + WAV_HEADER_BYTES + TAG_BYTES;
  for (let i = 0; i < 200 && (await readFile(live)).length < audioStart + 3 * (CS + TAG_BYTES); i++) await new Promise((r) => setTimeout(r, 5));
  const crashed = path.join(dir, 'crashed.wav.enc');
  await writeFile(crashed, Buffer.concat([await readFile(live), randomBytes(500)])); // and a torn fourth chunk
  await w.close();
  assert.deepEqual(await repairEnvelope(crashed), { dataBytes: 3 * CS, chunkSize: CS, unwritten: [] });
  assert.throws(() => open(crashed), /never written, and the recording is not one recovered|without its final chunk/);
  const back = path.join(dir, 'crashed.wav');
  open(crashed, { channels: 2, gaps: [], recovered: true }, back);
  assert.deepEqual(
    await readFile(back),
    Buffer.concat([wavHeader(2, 3 * CS), audio.subarray(0, 3 * CS)]),
    'the WAV header rebuilt from the metadata, the whole chunks kept',
  );

  // A chunk a failed write never reached (zeros on disk) is a gap recovery finds; it reads as silence only when listed.
  const gapped = path.join(dir, 'gapped.wav.enc');
  const bytes = await readFile(crashed);
  bytes.fill(0, audioStart + (CS + TAG_BYTES), audioStart + 2 * (CS + TAG_BYTES));
  await writeFile(gapped, bytes);
  assert.deepEqual((await repairEnvelope(gapped)).unwritten, [[2, 3]]);
  assert.throws(() => open(gapped, { channels: 2, gaps: [], recovered: true }), /chunk 2 does not authenticate/);
  const silent = path.join(dir, 'gapped.wav');
  open(gapped, { channels: 2, gaps: [[2, 3]], recovered: true }, silent);
  assert.deepEqual(
    await readFile(silent),
    Buffer.concat([wavHeader(2, 3 * CS), audio.subarray(0, CS), Buffer.alloc(CS), audio.subarray(2 * CS, 3 * CS)]),
  );
});
