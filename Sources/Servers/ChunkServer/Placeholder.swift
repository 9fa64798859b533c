public enum _PlaceholderChunkServer {}
