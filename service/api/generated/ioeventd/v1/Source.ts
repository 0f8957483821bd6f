// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface Source {
  'pid'?: (number);
  'fd'?: (number);
  'handle'?: (string);
}

export interface Source__Output {
  'pid': (number);
  'fd': (number);
  'handle': (string);
}
