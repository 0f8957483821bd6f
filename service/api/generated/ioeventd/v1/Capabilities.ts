// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface Capabilities {
  'widths'?: (number)[];
  'eightByteWrites'?: (boolean);
  'eightByteWritesReason'?: (string);
  'backends'?: (string)[];
  'pollModes'?: (string)[];
  'pollMode'?: (string);
  'workers'?: (number);
  'features'?: (string)[];
}

export interface Capabilities__Output {
  'widths': (number)[];
  'eightByteWrites': (boolean);
  'eightByteWritesReason': (string);
  'backends': (string)[];
  'pollModes': (string)[];
  'pollMode': (string);
  'workers': (number);
  'features': (string)[];
}
