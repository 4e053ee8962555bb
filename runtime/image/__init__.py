"""The image store: content-addressed blobs in an OCI layout, unpacked layer snapshots, registry client.

Entry points: `runtime.image.store.ImageStore`, `runtime.image.build.build_busybox`,
`runtime.image.describe.inspect_image`.
"""
