"""Our own minimal Teleport .proto files and the code generated from them (do not edit *_pb2*)."""
