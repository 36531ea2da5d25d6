"""Plug-ins for the UIs people already generate images in.

``common`` holds what every host shares (the model cache, model folders, option
parsing); ``comfyui`` the ComfyUI nodes; ``a1111`` the A1111 / Forge script's
processing logic. The host-side folders (``integrations/comfyui``,
``integrations/a1111`` in the repository) only import these modules, so the logic
is tested here without a host. Nothing heavy is imported until a node runs.
"""
