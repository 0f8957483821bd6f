// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AgentInfo as _ioeventd_v1_AgentInfo, AgentInfo__Output as _ioeventd_v1_AgentInfo__Output } from '../../ioeventd/v1/AgentInfo.ts';
import type { CreateIoeventfdRequest as _ioeventd_v1_CreateIoeventfdRequest, CreateIoeventfdRequest__Output as _ioeventd_v1_CreateIoeventfdRequest__Output } from '../../ioeventd/v1/CreateIoeventfdRequest.ts';
import type { DeleteIoeventfdRequest as _ioeventd_v1_DeleteIoeventfdRequest, DeleteIoeventfdRequest__Output as _ioeventd_v1_DeleteIoeventfdRequest__Output } from '../../ioeventd/v1/DeleteIoeventfdRequest.ts';
import type { DeleteIoeventfdResponse as _ioeventd_v1_DeleteIoeventfdResponse, DeleteIoeventfdResponse__Output as _ioeventd_v1_DeleteIoeventfdResponse__Output } from '../../ioeventd/v1/DeleteIoeventfdResponse.ts';
import type { Device as _ioeventd_v1_Device, Device__Output as _ioeventd_v1_Device__Output } from '../../ioeventd/v1/Device.ts';
import type { GetAgentInfoRequest as _ioeventd_v1_GetAgentInfoRequest, GetAgentInfoRequest__Output as _ioeventd_v1_GetAgentInfoRequest__Output } from '../../ioeventd/v1/GetAgentInfoRequest.ts';
import type { GetDeviceRequest as _ioeventd_v1_GetDeviceRequest, GetDeviceRequest__Output as _ioeventd_v1_GetDeviceRequest__Output } from '../../ioeventd/v1/GetDeviceRequest.ts';
import type { GetIoeventfdRequest as _ioeventd_v1_GetIoeventfdRequest, GetIoeventfdRequest__Output as _ioeventd_v1_GetIoeventfdRequest__Output } from '../../ioeventd/v1/GetIoeventfdRequest.ts';
import type { Ioeventfd as _ioeventd_v1_Ioeventfd, Ioeventfd__Output as _ioeventd_v1_Ioeventfd__Output } from '../../ioeventd/v1/Ioeventfd.ts';
import type { IoeventfdEvent as _ioeventd_v1_IoeventfdEvent, IoeventfdEvent__Output as _ioeventd_v1_IoeventfdEvent__Output } from '../../ioeventd/v1/IoeventfdEvent.ts';
import type { ListDevicesRequest as _ioeventd_v1_ListDevicesRequest, ListDevicesRequest__Output as _ioeventd_v1_ListDevicesRequest__Output } from '../../ioeventd/v1/ListDevicesRequest.ts';
import type { ListDevicesResponse as _ioeventd_v1_ListDevicesResponse, ListDevicesResponse__Output as _ioeventd_v1_ListDevicesResponse__Output } from '../../ioeventd/v1/ListDevicesResponse.ts';
import type { ListIoeventfdsRequest as _ioeventd_v1_ListIoeventfdsRequest, ListIoeventfdsRequest__Output as _ioeventd_v1_ListIoeventfdsRequest__Output } from '../../ioeventd/v1/ListIoeventfdsRequest.ts';
import type { ListIoeventfdsResponse as _ioeventd_v1_ListIoeventfdsResponse, ListIoeventfdsResponse__Output as _ioeventd_v1_ListIoeventfdsResponse__Output } from '../../ioeventd/v1/ListIoeventfdsResponse.ts';
import type { ReconcileOwnerRequest as _ioeventd_v1_ReconcileOwnerRequest, ReconcileOwnerRequest__Output as _ioeventd_v1_ReconcileOwnerRequest__Output } from '../../ioeventd/v1/ReconcileOwnerRequest.ts';
import type { ReconcileOwnerResponse as _ioeventd_v1_ReconcileOwnerResponse, ReconcileOwnerResponse__Output as _ioeventd_v1_ReconcileOwnerResponse__Output } from '../../ioeventd/v1/ReconcileOwnerResponse.ts';
import type { WatchIoeventfdsRequest as _ioeventd_v1_WatchIoeventfdsRequest, WatchIoeventfdsRequest__Output as _ioeventd_v1_WatchIoeventfdsRequest__Output } from '../../ioeventd/v1/WatchIoeventfdsRequest.ts';

export interface IoeventfdServiceClient extends grpc.Client {
  CreateIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  CreateIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  CreateIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  CreateIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  createIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  createIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  createIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  createIoeventfd(argument: _ioeventd_v1_CreateIoeventfdRequest, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  
  DeleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  DeleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  DeleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  DeleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  deleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  deleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  deleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  deleteIoeventfd(argument: _ioeventd_v1_DeleteIoeventfdRequest, callback: grpc.requestCallback<_ioeventd_v1_DeleteIoeventfdResponse__Output>): grpc.ClientUnaryCall;
  
  GetAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  GetAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  GetAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  GetAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  getAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  getAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  getAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  getAgentInfo(argument: _ioeventd_v1_GetAgentInfoRequest, callback: grpc.requestCallback<_ioeventd_v1_AgentInfo__Output>): grpc.ClientUnaryCall;
  
  GetDevice(argument: _ioeventd_v1_GetDeviceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  GetDevice(argument: _ioeventd_v1_GetDeviceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  GetDevice(argument: _ioeventd_v1_GetDeviceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  GetDevice(argument: _ioeventd_v1_GetDeviceRequest, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  getDevice(argument: _ioeventd_v1_GetDeviceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  getDevice(argument: _ioeventd_v1_GetDeviceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  getDevice(argument: _ioeventd_v1_GetDeviceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  getDevice(argument: _ioeventd_v1_GetDeviceRequest, callback: grpc.requestCallback<_ioeventd_v1_Device__Output>): grpc.ClientUnaryCall;
  
  GetIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  GetIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  GetIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  GetIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  getIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  getIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  getIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  getIoeventfd(argument: _ioeventd_v1_GetIoeventfdRequest, callback: grpc.requestCallback<_ioeventd_v1_Ioeventfd__Output>): grpc.ClientUnaryCall;
  
  ListDevices(argument: _ioeventd_v1_ListDevicesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  ListDevices(argument: _ioeventd_v1_ListDevicesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  ListDevices(argument: _ioeventd_v1_ListDevicesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  ListDevices(argument: _ioeventd_v1_ListDevicesRequest, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  listDevices(argument: _ioeventd_v1_ListDevicesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  listDevices(argument: _ioeventd_v1_ListDevicesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  listDevices(argument: _ioeventd_v1_ListDevicesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  listDevices(argument: _ioeventd_v1_ListDevicesRequest, callback: grpc.requestCallback<_ioeventd_v1_ListDevicesResponse__Output>): grpc.ClientUnaryCall;
  
  ListIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  ListIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  ListIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  ListIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  listIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  listIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  listIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  listIoeventfds(argument: _ioeventd_v1_ListIoeventfdsRequest, callback: grpc.requestCallback<_ioeventd_v1_ListIoeventfdsResponse__Output>): grpc.ClientUnaryCall;
  
  ReconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  ReconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  ReconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  ReconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  reconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  reconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  reconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  reconcileOwner(argument: _ioeventd_v1_ReconcileOwnerRequest, callback: grpc.requestCallback<_ioeventd_v1_ReconcileOwnerResponse__Output>): grpc.ClientUnaryCall;
  
  WatchIoeventfds(argument: _ioeventd_v1_WatchIoeventfdsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ioeventd_v1_IoeventfdEvent__Output>;
  WatchIoeventfds(argument: _ioeventd_v1_WatchIoeventfdsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ioeventd_v1_IoeventfdEvent__Output>;
  watchIoeventfds(argument: _ioeventd_v1_WatchIoeventfdsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ioeventd_v1_IoeventfdEvent__Output>;
  watchIoeventfds(argument: _ioeventd_v1_WatchIoeventfdsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ioeventd_v1_IoeventfdEvent__Output>;
  
}

export interface IoeventfdServiceHandlers extends grpc.UntypedServiceImplementation {
  CreateIoeventfd: grpc.handleUnaryCall<_ioeventd_v1_CreateIoeventfdRequest__Output, _ioeventd_v1_Ioeventfd>;
  
  DeleteIoeventfd: grpc.handleUnaryCall<_ioeventd_v1_DeleteIoeventfdRequest__Output, _ioeventd_v1_DeleteIoeventfdResponse>;
  
  GetAgentInfo: grpc.handleUnaryCall<_ioeventd_v1_GetAgentInfoRequest__Output, _ioeventd_v1_AgentInfo>;
  
  GetDevice: grpc.handleUnaryCall<_ioeventd_v1_GetDeviceRequest__Output, _ioeventd_v1_Device>;
  
  GetIoeventfd: grpc.handleUnaryCall<_ioeventd_v1_GetIoeventfdRequest__Output, _ioeventd_v1_Ioeventfd>;
  
  ListDevices: grpc.handleUnaryCall<_ioeventd_v1_ListDevicesRequest__Output, _ioeventd_v1_ListDevicesResponse>;
  
  ListIoeventfds: grpc.handleUnaryCall<_ioeventd_v1_ListIoeventfdsRequest__Output, _ioeventd_v1_ListIoeventfdsResponse>;
  
  ReconcileOwner: grpc.handleUnaryCall<_ioeventd_v1_ReconcileOwnerRequest__Output, _ioeventd_v1_ReconcileOwnerResponse>;
  
  WatchIoeventfds: grpc.handleServerStreamingCall<_ioeventd_v1_WatchIoeventfdsRequest__Output, _ioeventd_v1_IoeventfdEvent>;
  
}

export interface IoeventfdServiceDefinition extends grpc.ServiceDefinition {
  CreateIoeventfd: MethodDefinition<_ioeventd_v1_CreateIoeventfdRequest, _ioeventd_v1_Ioeventfd, _ioeventd_v1_CreateIoeventfdRequest__Output, _ioeventd_v1_Ioeventfd__Output>
  DeleteIoeventfd: MethodDefinition<_ioeventd_v1_DeleteIoeventfdRequest, _ioeventd_v1_DeleteIoeventfdResponse, _ioeventd_v1_DeleteIoeventfdRequest__Output, _ioeventd_v1_DeleteIoeventfdResponse__Output>
  GetAgentInfo: MethodDefinition<_ioeventd_v1_GetAgentInfoRequest, _ioeventd_v1_AgentInfo, _ioeventd_v1_GetAgentInfoRequest__Output, _ioeventd_v1_AgentInfo__Output>
  GetDevice: MethodDefinition<_ioeventd_v1_GetDeviceRequest, _ioeventd_v1_Device, _ioeventd_v1_GetDeviceRequest__Output, _ioeventd_v1_Device__Output>
  GetIoeventfd: MethodDefinition<_ioeventd_v1_GetIoeventfdRequest, _ioeventd_v1_Ioeventfd, _ioeventd_v1_GetIoeventfdRequest__Output, _ioeventd_v1_Ioeventfd__Output>
  ListDevices: MethodDefinition<_ioeventd_v1_ListDevicesRequest, _ioeventd_v1_ListDevicesResponse, _ioeventd_v1_ListDevicesRequest__Output, _ioeventd_v1_ListDevicesResponse__Output>
  ListIoeventfds: MethodDefinition<_ioeventd_v1_ListIoeventfdsRequest, _ioeventd_v1_ListIoeventfdsResponse, _ioeventd_v1_ListIoeventfdsRequest__Output, _ioeventd_v1_ListIoeventfdsResponse__Output>
  ReconcileOwner: MethodDefinition<_ioeventd_v1_ReconcileOwnerRequest, _ioeventd_v1_ReconcileOwnerResponse, _ioeventd_v1_ReconcileOwnerRequest__Output, _ioeventd_v1_ReconcileOwnerResponse__Output>
  WatchIoeventfds: MethodDefinition<_ioeventd_v1_WatchIoeventfdsRequest, _ioeventd_v1_IoeventfdEvent, _ioeventd_v1_WatchIoeventfdsRequest__Output, _ioeventd_v1_IoeventfdEvent__Output>
}
