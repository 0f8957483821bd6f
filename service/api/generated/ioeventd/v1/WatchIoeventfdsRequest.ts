// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface WatchIoeventfdsRequest {
  'device'?: (string);
  'owner'?: (string);
}

export interface WatchIoeventfdsRequest__Output {
  'device': (string);
  'owner': (string);
}
