"""Lists a gRPC server's services with grpcio-reflection's v1alpha client, unmodified.

Usage: python list_services_v1alpha.py HOST:PORT   (prints one service name per line)
"""
import sys

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def main() -> None:
    with grpc.insecure_channel(sys.argv[1]) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        for response in stub.ServerReflectionInfo(iter([request]), timeout=10):
            for service in response.list_services_response.service:
                print(service.name)


main()
