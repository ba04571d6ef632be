"""What the tests share: fake Discord objects, the two worlds, images and videos."""
