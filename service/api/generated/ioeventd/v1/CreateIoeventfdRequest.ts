// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { IoeventfdSpec as _ioeventd_v1_IoeventfdSpec, IoeventfdSpec__Output as _ioeventd_v1_IoeventfdSpec__Output } from '../../ioeventd/v1/IoeventfdSpec.ts';

export interface CreateIoeventfdRequest {
  'spec'?: (_ioeventd_v1_IoeventfdSpec | null);
  'owner'?: (string);
  'requestId'?: (string);
  'validateOnly'?: (boolean);
}

export interface CreateIoeventfdRequest__Output {
  'spec': (_ioeventd_v1_IoeventfdSpec__Output | null);
  'owner': (string);
  'requestId': (string);
  'validateOnly': (boolean);
}
