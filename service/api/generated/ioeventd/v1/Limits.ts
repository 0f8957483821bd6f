// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface Limits {
  'maxPerDevice'?: (number);
  'maxPerOwner'?: (number);
}

export interface Limits__Output {
  'maxPerDevice': (number);
  'maxPerOwner': (number);
}
