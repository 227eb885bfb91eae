"""The platform on one machine: throwaway servers (`servers`) and `eafix up` (`up`)."""
