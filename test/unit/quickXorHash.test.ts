import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QuickXorHash } from '../../daemon/upload/onedrive/quickXorHash.js';

// Published test vectors (rclone's OneDrive backend): base64 input, base64 hash.
const VECTORS: readonly [string, string][] = [
  ['', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='],
  ['Sg==', 'SgAAAAAAAAAAAAAAAQAAAAAAAAA='],
  ['n6Neh7p6fFgm', 'nxiFFw6hCz3wAQsmCQAAAAAAAAA='],
  ['2fuxhBJXtpWFe8dOfdGeHw==', 'O9tHLAghgSvYohKFyMMxnNCHaHg='],
  ['Mb7EGva2rEE5fENDL85P+BsapHEEjv2/siVhKjvAQe02feExVOQSkfmuYzU/kTF1MaKjPmKF/w+cbvwfdWL8aQ==', 'n1anP5NfvD4XDYWIeRPW3ZkPv1Y='],
  [
    'PfxMcUd0vIW6VbHG/uj/Y0W6qEoKmyBD0nYebEKazKaKG+UaDqBEcmQjbfQeVnVLuodMoPp7P7TR1htX5n2VnkHh22xDyoJ8C/ZQKiSNqQfXvh83judf4RVr9exJCud8Uvgip6aVZTaPrJHVjQhMCp/dEnGvqg0oN5OVkM2qqAXvA0teKUDhgNM71sDBVBCGXxNOR2bpbD1iM4dnuT0ey4L+loXEHTL0fqMeUcEi2asgImnlNakwenDzz0x57aBwyq3AspCFGB1ncX4yYCr/OaCcS5OKi/00WH+wNQU3',
    'QX/YEpG0gDsmhEpCdWhsxDzsfVE=',
  ],
];

test('QuickXorHash matches the published vectors, whole and fed in pieces of any size', () => {
  for (const [input, want] of VECTORS) {
    const data = Buffer.from(input, 'base64');
    assert.equal(new QuickXorHash().update(data).digest(), want, `${data.length} bytes`);
    for (const piece of [1, 7, 64, 161]) {
      const h = new QuickXorHash();
      for (let i = 0; i < data.length; i += piece) h.update(data.subarray(i, i + piece));
      assert.equal(h.digest(), want, `${data.length} bytes in pieces of ${piece}`);
    }
  }
});
