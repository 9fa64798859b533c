public enum _PlaceholderChunkMaster {}
